"""Versioned deliveries: every run writes a new version, never overwrites one.

Each delivery table in ``warehouse.duckdb`` carries ``period`` and ``version``; ``<table>_current``
is a view of the newest version of each period; ``delivery_versions`` holds one row per step,
period and version with the run id, time, override and the exact submissions (ids and
checksums) it was built from, so any published number can be traced to the files behind it,
and what shaped it besides those files (``provenance.Provenance``: code version and commit,
check catalogue, registry version, reference data and locked dependencies; docs/audit.md).
Kjernejournal rows hold fødselsnummer and are written apart, under ``HOME/restricted``, with a
manifest that says so; the warehouse keeps only their counts and version.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from npr_pipeline.atomic import atomic_path, write_text
from npr_pipeline.duck import has_table
from npr_pipeline.home import Home
from npr_pipeline.provenance import PROVENANCE_COLUMNS, Provenance, collect
from npr_pipeline.warehouse import retype, writer

RESTRICTED_TABLES = ("kjernejournal",)

Frame = pd.DataFrame | pa.Table
"""A delivery table: small ones as pandas frames, the detail tables (a row per stay or
contact, over a million in a national tertial) as Arrow tables, which take a third of the
memory and skip pandas' object conversion."""
VERSIONS_DDL = """CREATE TABLE IF NOT EXISTS delivery_versions (
    step VARCHAR, period VARCHAR, version INTEGER, run_id VARCHAR, created TIMESTAMP,
    official BOOLEAN, override VARCHAR, submissions VARCHAR, tables VARCHAR,
    restricted_path VARCHAR, gate VARCHAR, daily_batch BIGINT, checks VARCHAR)"""
GATE_COLUMN = "ALTER TABLE delivery_versions ADD COLUMN IF NOT EXISTS gate VARCHAR"
"""The completeness gate's verdict for the version (JSON: gate, missing, excused and left-out
units, the override, the snapshot build it was judged in); added to older warehouses."""
DAILY_BATCH_COLUMN = "ALTER TABLE delivery_versions ADD COLUMN IF NOT EXISTS daily_batch BIGINT"
"""The intake batch the daily units' consolidated state was read at (the snapshot's high-water
mark): the version can be rebuilt from the event tables as known then."""
CHECKS_COLUMN = "ALTER TABLE delivery_versions ADD COLUMN IF NOT EXISTS checks VARCHAR"
"""Which rows of the snapshot build the quality checks ran over (JSON,
``check_scope.CheckScope.as_json``: every row, or the daily units' rows and the build whose
checks passed over the carried monthly rows); added to older warehouses."""


@dataclass(frozen=True)
class Lineage:
    """Where a version came from."""

    run_id: str
    submissions: list[dict[str, str]]
    override: dict[str, object] | None
    official: bool
    provenance: Provenance | None = None
    """What shaped the version; collected when it is written if not given."""
    gate: dict[str, object] | None = None
    daily_batch: int | None = None
    checks: dict[str, object] | None = None


def write_delivery(
    home: Home, step: str, period: str, tables: dict[str, Frame], lineage: Lineage
) -> int:
    """Write all tables of one step's run as the next version; returns the version number."""
    provenance = lineage.provenance or collect(home)
    lineage = replace(lineage, provenance=provenance)
    with writer(home) as con:
        con.execute(VERSIONS_DDL)
        for column, sql_type in PROVENANCE_COLUMNS.items():  # added to older warehouses too
            con.execute(
                f"ALTER TABLE delivery_versions ADD COLUMN IF NOT EXISTS {column} {sql_type}"
            )
        con.execute(GATE_COLUMN)
        con.execute(DAILY_BATCH_COLUMN)
        con.execute(CHECKS_COLUMN)
        retype(con, "delivery_versions", "created", "TIMESTAMP")  # VARCHAR (ISO, UTC) before
        version = _next_version(con, step, period)
        restricted = None
        counts = {}
        for name, frame in tables.items():
            counts[name] = len(frame)
            if name in RESTRICTED_TABLES:
                summary = tables.get(f"{name}_counts")
                facts = summary.iloc[0].to_dict() if summary is not None and len(summary) else {}
                restricted = _write_restricted(home, step, period, version, frame, lineage, facts)
                continue
            _insert(con, name, _stamped(frame, period, version))
        row = {
            "step": step,
            "period": period,
            "version": version,
            "run_id": lineage.run_id,
            "created": datetime.now(UTC).replace(tzinfo=None, microsecond=0),  # UTC
            "official": lineage.official,
            "override": json.dumps(lineage.override) if lineage.override else None,
            "submissions": json.dumps(lineage.submissions),
            "tables": json.dumps(counts),
            # relative to HOME: a copied or moved HOME still finds its restricted rows
            "restricted_path": restricted.relative_to(home.root).as_posix() if restricted else None,
            "gate": json.dumps(lineage.gate, ensure_ascii=False) if lineage.gate else None,
            "daily_batch": lineage.daily_batch,
            "checks": json.dumps(lineage.checks) if lineage.checks else None,
            **provenance.as_row(),
        }
        con.execute(
            f"INSERT INTO delivery_versions ({', '.join(row)}) "
            f"VALUES ({', '.join('?' for _ in row)})",
            list(row.values()),
        )
    return version


def _next_version(con: duckdb.DuckDBPyConnection, step: str, period: str) -> int:
    row = con.execute(
        "SELECT max(version) FROM delivery_versions WHERE step = ? AND period = ?", [step, period]
    ).fetchall()[0]
    return (row[0] or 0) + 1


def _stamped(frame: Frame, period: str, version: int) -> Frame:
    """The rows with their period and version columns."""
    if isinstance(frame, pa.Table):
        rows = frame.num_rows
        frame = frame.append_column("period", pa.array([period] * rows, pa.string()))
        return frame.append_column("version", pa.array([version] * rows, pa.int64()))
    return frame.assign(period=period, version=version)


def _insert(con: duckdb.DuckDBPyConnection, name: str, frame: Frame) -> None:
    if isinstance(frame, pd.DataFrame):
        # Text columns as pandas strings: an empty first version must still create VARCHAR
        # columns (an all-None object column would become DuckDB's NULL type and refuse later
        # rows). Arrow tables carry their types.
        text = [c for c in frame.columns if frame[c].dtype == object]
        frame = frame.astype(dict.fromkeys(text, "string"))
    con.register("_rows", frame)
    if has_table(con, name):
        _evolve(con, name)
        con.execute(f'INSERT INTO "{name}" BY NAME SELECT * FROM _rows')
    else:
        con.execute(f'CREATE TABLE "{name}" AS SELECT * FROM _rows')
        con.execute(
            f'CREATE OR REPLACE VIEW "{name}_current" AS SELECT * FROM "{name}" t '
            f'WHERE version = (SELECT max(version) FROM "{name}" s WHERE s.period = t.period)'
        )
    con.unregister("_rows")


def _evolve(con: duckdb.DuckDBPyConnection, name: str) -> None:
    """Bring a delivery table written by an older release to the new version's columns.

    A rule change may add a column (it is NULL in older versions) or change a type (money
    went from DOUBLE to DECIMAL(18,2): older versions were already rounded to øre, so the
    cast keeps their values). Without this, a HOME would refuse every new version, or keep
    exact money in a binary floating-point column.
    """
    old = dict(con.execute(f'SELECT column_name, column_type FROM (DESCRIBE "{name}")').fetchall())
    for column, column_type in con.execute(
        "SELECT column_name, column_type FROM (DESCRIBE _rows)"
    ).fetchall():
        if column not in old:
            con.execute(f'ALTER TABLE "{name}" ADD COLUMN "{column}" {column_type}')
        elif old[column] != column_type and column_type.startswith("DECIMAL"):
            con.execute(f'ALTER TABLE "{name}" ALTER "{column}" TYPE {column_type}')


def _write_restricted(
    home: Home,
    step: str,
    period: str,
    version: int,
    frame: pa.Table,
    lineage: Lineage,
    facts: dict[str, object],
) -> Path:
    folder = home.restricted / step / f"period={period}"
    folder.mkdir(parents=True, exist_ok=True)
    folder.chmod(0o700)
    target = folder / f"v{version:04d}.parquet"
    with atomic_path(target) as tmp:
        pq.write_table(frame, tmp)  # Arrow from kjernejournal.compute, no pandas frame
    target.chmod(0o600)
    manifest = {
        "step": step,
        "period": period,
        "version": version,
        "run_id": lineage.run_id,
        "rows": len(frame),
        "contains_fodselsnummer": True,
        "access": "restricted: owner-only files under HOME/restricted; never in the warehouse",
        "submissions": lineage.submissions,
        "provenance": lineage.provenance.as_row() if lineage.provenance else None,
        "file": target.name,
        "counts": {k: v if isinstance(v, str) else int(v) for k, v in facts.items()},
    }
    write_text(folder / f"v{version:04d}.manifest.json", json.dumps(manifest, indent=2))
    return target


def versions(con: duckdb.DuckDBPyConnection, step: str, period: str) -> pd.DataFrame:
    """All versions of one step and period, oldest first."""
    return con.execute(
        "SELECT * FROM delivery_versions WHERE step = ? AND period = ? ORDER BY version",
        [step, period],
    ).df()
