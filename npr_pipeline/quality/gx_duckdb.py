"""The one work-around that lets GX Core 1.x validate tables in a DuckDB file (duckdb-engine).

Why: GX's SQL execution engine opens a fresh SQLAlchemy connection per query and closes it
before it fetches the metric rows (``resolve_metric_bundle``). duckdb-engine drops the result
with the connection, so GX gets no rows, raises ``IndexError: list index out of range`` and
every expectation fails with an empty result (GX issues #10738 and #11579). GX already keeps
one persisted connection (and a ``StaticPool``) for the dialects listed in
``sqlalchemy_execution_engine._PERSISTED_CONNECTION_DIALECTS`` (sqlite, mssql, bigquery,
databricks); adding ``duckdb`` to that tuple is the whole fix.

The patch changes one private module attribute, so it is pinned to the GX versions it was checked
on: ``tests/test_gx_duckdb.py`` fails loudly when the attribute moves, when GX fixes the bug
upstream (then delete this module), or when the installed GX is not in
``WORKAROUND_GX_VERSIONS`` (check the test still shows the bug, then add the version).
"""

from __future__ import annotations

import warnings
from enum import StrEnum

import great_expectations as gx
from great_expectations.execution_engine import sqlalchemy_execution_engine as _engine

WORKAROUND_GX_VERSIONS = ("1.24.1",)
"""GX versions on which the bug was reproduced and this patch shown to fix it."""


class _DuckDBDialect(StrEnum):
    """``duckdb`` in the shape GX expects of the tuple's members.

    GX compares members with the engine's dialect name (``name in tuple``: a ``str`` subclass
    equals ``"duckdb"``) and matches connection strings with ``member.value``.
    """

    DUCKDB = "duckdb"


def apply_workaround() -> None:
    """Make GX keep its SQLAlchemy connection open for the duckdb dialect (idempotent).

    Warns (rather than refuses) on an unchecked GX version: the pyproject range allows it, and
    the test suite is where an unchecked version must be looked at.
    """
    if gx.__version__ not in WORKAROUND_GX_VERSIONS:
        warnings.warn(
            f"npr gx_duckdb work-around not checked on great_expectations {gx.__version__} "
            f"(checked: {', '.join(WORKAROUND_GX_VERSIONS)}); run tests/test_gx_duckdb.py",
            stacklevel=2,
        )
    dialects = _engine._PERSISTED_CONNECTION_DIALECTS
    if _DuckDBDialect.DUCKDB not in dialects:
        _engine._PERSISTED_CONNECTION_DIALECTS = (*dialects, _DuckDBDialect.DUCKDB)
