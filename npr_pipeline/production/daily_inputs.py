"""The daily units' part of a period's input: their consolidated state at the snapshot's batch.

A daily unit has no covering submission: its rows are the fold of its events up to the batch
high-water mark the snapshot read (``store.consolidated.register_daily_state``), cut to the
period exactly as a monthly unit's rows are. The rules and the catalogue join a record's rows
by ``submission_id`` (one cumulative file holds the unit's whole year), so in production's
views a daily unit's rows carry one id for the unit's state, ``daily-<unit>-<year>``
(:func:`state_id`); the files behind each row are kept beside them (``daily_sources``: table,
unit, record, file, line) and every one of them is in the snapshot's lineage.

The catalogue's content checks run over each daily unit's state as they run over a monthly
delivery (``quality.sql_engine``, the same SQL), and an error finding excludes the daily record
exactly as it would a monthly one.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import duckdb
import pandas as pd
import pyarrow as pa

from npr_pipeline import duck
from npr_pipeline.home import Home
from npr_pipeline.quality import reference_tables
from npr_pipeline.quality.catalogue import load_catalogue
from npr_pipeline.quality.sql_engine import run_checks
from npr_pipeline.settings import load_settings
from npr_pipeline.store import ledger, state
from npr_pipeline.store.consolidated import register_daily_state
from npr_pipeline.store.lake import TABLES, schema_of

DAILY = "daily"
PREFIX = "daily_"
RECORD = {
    "episodes": "episodeID", "diagnoses": "episodeID", "procedures": "episodeID",
    "referrals": "henvisningsperiodeID", "postponements": "henvisningsperiodeID",
    "patients": "pasientNr", "departments": "reshID", "idents": "pid",
}  # fmt: skip
"""The record a row belongs to, per table (what ``daily_sources`` names)."""


@dataclass(frozen=True)
class DailyInput:
    """Which units a period reads from the consolidated state, and as known at which batch."""

    units: tuple[str, ...] = ()
    batch: int = 0


NO_DAILY = DailyInput()
"""No daily unit: a period read from monthly files only."""


def state_id(unit: str, year: int) -> str:
    """The id a daily unit's state rows carry in production's views (its one 'submission')."""
    return f"daily-{unit}-{year}"


def daily_units(registry: pd.DataFrame, year: int) -> list[str]:
    """Units whose registry row valid in ``year`` says they report by the daily route."""
    if "route" not in registry.columns:
        return []
    start, end = f"{year}-01-01", f"{year}-12-31"
    valid_from = registry["valid_from"].fillna("").astype(str)
    valid_to = registry["valid_to"].fillna("").astype(str)
    valid = (valid_from <= end) & ((valid_to == "") | (valid_to >= start))
    daily = registry["route"].fillna("").astype(str).str.strip() == DAILY
    return sorted(set(registry.loc[valid & daily, "reshID"].astype(str)))


def register_daily_rows(
    con: duckdb.DuckDBPyConnection,
    home: Home,
    year: int,
    daily: DailyInput,
    tables: tuple[str, ...] = TABLES,
) -> dict[str, str]:
    """Fold the daily units' state and give, per lake table (of ``tables``: only what is
    folded is paid for), the SQL of its rows with the unit's state id as ``submission_id``
    (``fid`` included for ``idents``). Also creates the temp table ``daily_sources`` (table,
    unit, record_id, file, line) of those tables."""
    only = None if tables == TABLES else tables
    register_daily_state(con, home, year, daily.batch, daily.units, prefix=PREFIX, tables=only)
    sid = f"'daily-' || unit || '-{int(year)}'"
    con.execute(
        "CREATE OR REPLACE TEMP TABLE daily_sources AS "
        + " UNION ALL ".join(
            f'SELECT \'{t}\' AS "table", unit, CAST("{RECORD[t]}" AS VARCHAR) AS record_id, '
            f"submission_id AS file, {_line(t)} AS line FROM {PREFIX}{t}"
            for t in tables
        )
    )
    return {t: f"SELECT * REPLACE ({sid} AS submission_id) FROM {PREFIX}{t}" for t in tables}


def _line(table: str) -> str:
    """The row's line in its file, where the lake table keeps it."""
    return "line" if "line" in schema_of(table).names else "CAST(NULL AS INTEGER)"


def daily_violations(
    con: duckdb.DuckDBPyConnection,
    home: Home,
    year: int,
    daily: DailyInput,
    rows: dict[str, str],
) -> pa.Table:
    """The catalogue's findings over the daily units' state, as the monthly violations files
    hold them: one run of every check over every daily unit (each unit its own 'submission',
    its ide the same id, extracted on the day its newest file was received)."""
    check = duck.connect()
    try:
        for table, sql in rows.items():
            check.register(f"_{table}", con.sql(sql).to_arrow_table())
            check.execute(f"CREATE TEMP TABLE {table} AS SELECT * FROM _{table}")
        reference_tables.register(check)
        ids = [state_id(unit, year) for unit in daily.units]
        received = received_date(home, daily.batch)
        check.register(
            "_ref",
            pa.table(
                {
                    "submission_id": pa.array(ids, pa.string()),
                    "extracted": pa.array([received] * len(ids), pa.date32()),
                    "period_to": pa.array([date(year, 12, 31)] * len(ids), pa.date32()),
                }
            ),
        )
        check.execute("CREATE TEMP TABLE ref_submission AS SELECT * FROM _ref")
        check.execute(
            "CREATE TEMP TABLE ref_pair AS SELECT submission_id AS ord_sid, "
            "submission_id AS ide_sid FROM _ref"
        )
        allow = load_settings(home).synthetic_fnr_accepted
        _, violations = run_checks(check, list(load_catalogue()), allow)
    finally:
        check.close()
    return pa.Table.from_pandas(violations, preserve_index=False)


def received_date(home: Home, batch: int) -> date:
    """The day the newest file of the batches up to ``batch`` was received (intake's clock; the
    commit time for batches from before that was recorded): no record of the state as known at
    ``batch`` can have happened after the register received it."""
    with state.reader(home, ledger._prepare) as con:
        found = con.execute(
            "SELECT max(coalesce(received, committed)) FROM batches "
            "WHERE batch <= ? AND committed IS NOT NULL",
            [batch],
        ).fetchall()[0][0]
    return found.date() if found is not None else date.today()
