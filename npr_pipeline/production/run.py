"""One production step for one period, end to end, as plain functions the assets call.

``produce`` reads the period's inputs (current covering submissions, exclusions applied),
computes the step's tables with its rules module and writes them as a new delivery version
with full lineage. ``input_quality`` is what the blocking checks before production look at.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import pandas as pd

from npr_pipeline import reference
from npr_pipeline.home import Home
from npr_pipeline.intake.ledger import load_ledger
from npr_pipeline.periods import Period
from npr_pipeline.production import gjestepasient, isf, kjernejournal, reference_sql, ventetider
from npr_pipeline.production.deliveries import Lineage, write_delivery
from npr_pipeline.production.inputs import PeriodInput, period_input, register_period_views
from npr_pipeline.quality import reference_tables
from npr_pipeline.registry import current_registry


@dataclass
class StepResult:
    """What a step produced."""

    step: str
    period: str
    version: int
    rows: dict[str, int] = field(default_factory=dict)
    excluded: int = 0


def open_period(home: Home, period: Period) -> tuple[duckdb.DuckDBPyConnection, PeriodInput]:
    """An in-memory DuckDB session with the period's views and reference tables."""
    ledger = load_ledger(home)
    inputs = period_input(ledger, period)
    con = duckdb.connect()
    register_period_views(con, home, inputs)
    reference_sql.register(con, current_registry(home), period.year)
    return con, inputs


def compute_step(
    con: duckdb.DuckDBPyConnection, step: str, period: Period
) -> dict[str, pd.DataFrame]:
    """The step's output tables (pure: only reads the session's views)."""
    if step == "ventetider":
        return ventetider.compute(con, period, reference.suppression_threshold("published"))
    if step == "isf":
        return isf.compute(con, period)
    if step == "gjestepasient":
        isf.compute(con, period)
        return gjestepasient.compute(con, period)
    if step == "kjernejournal":
        return kjernejournal.compute(con, period)
    raise ValueError(f"unknown step {step!r}")


def produce(
    home: Home, period: Period, step: str, run_id: str, override: dict[str, object] | None = None
) -> StepResult:
    """Compute one step and write it as the next version of its delivery."""
    con, inputs = open_period(home, period)
    try:
        tables = compute_step(con, step, period)
        excluded = exclusion_summary(con)
    finally:
        con.close()
    tables[f"{step}_exclusions"] = excluded
    lineage = Lineage(
        run_id=run_id,
        submissions=submission_lineage(inputs),
        override=override,
        official=period.official,
    )
    version = write_delivery(home, step, str(period), tables, lineage)
    rows = {name: len(frame) for name, frame in tables.items()}
    return StepResult(step, str(period), version, rows, int(excluded["records"].sum()))


def exclusion_summary(con: duckdb.DuckDBPyConnection) -> pd.DataFrame:
    """Records left out of production, per rule, table and unit: what every number says."""
    return con.execute(
        """SELECT check_id, "table", unit, count(DISTINCT record_id) AS records
           FROM excluded GROUP BY ALL ORDER BY ALL"""
    ).df()


def submission_lineage(inputs: PeriodInput) -> list[dict[str, str]]:
    """The submissions a period was read from, with the checksums of their archived bytes."""
    columns = ["submission_id", "checksum", "unit", "message_type", "file"]
    return inputs.submissions[columns].astype(str).to_dict("records")


def input_quality(home: Home, period: Period, max_share: float) -> dict[str, object]:
    """The facts the blocking checks before production need.

    ``remaining_errors``: error findings still present in what production reads (must be 0:
    exclusion worked); ``excluded_share``: per unit, the share of its episodes left out; units
    above ``max_share`` sent a broken extract, not a few bad records.
    """
    con, _ = open_period(home, period)
    try:
        shares = con.execute(
            """SELECT r.unit, count(*) AS episodes,
                      count(*) - count(e."episodeID") AS excluded
               FROM raw_episodes r
               LEFT JOIN episodes e ON e.submission_id = r.submission_id
                    AND e."episodeID" = r."episodeID"
               WHERE CAST(r."utDatoTid" AS DATE) <= (SELECT max(CAST("utDatoTid" AS DATE))
                                                     FROM raw_episodes)
               GROUP BY r.unit ORDER BY r.unit"""
        ).df()
        by_rule = exclusion_summary(con)
    finally:
        con.close()
    shares["share"] = (shares["excluded"] / shares["episodes"]).fillna(0.0)
    return {
        "shares": shares,
        "over": shares[shares["share"] > max_share],
        "by_rule": by_rule,
    }


def build_quality_database(home: Home, period: Period) -> Path:
    """A DuckDB file of the period's tables (exclusions applied), for the GX suites.

    Materialised, not views: GX issues several queries per expectation, and over views each
    of them read ~2,000 lake files per table and ~2,000 violation files again; here the lake
    is read once and every query scans one table. Rebuilt from scratch on every call.
    """
    path = quality_database_path(home, period)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.unlink(missing_ok=True)
    inputs = period_input(load_ledger(home), period)
    con = duckdb.connect(str(path))
    try:
        register_period_views(con, home, inputs, materialise=True)
        reference_tables.register(con, persistent=True)
        register_lineage_tables(con, inputs)
    finally:
        con.close()
    return path


def quality_database_path(home: Home, period: Period) -> Path:
    """Where ``build_quality_database`` writes the period's file (replaced on every build)."""
    return home.root / "quality_runs" / f"{period}.duckdb"


def register_lineage_tables(con: duckdb.DuckDBPyConnection, inputs: PeriodInput) -> None:
    """``ref_pair`` and ``ref_submission`` for the period's current deliveries (pair rules)."""
    pairs = inputs.ords[["unit", "submission_id"]].merge(
        inputs.ides[["unit", "submission_id"]], on="unit", how="left", suffixes=("_ord", "_ide")
    )
    pairs = pairs.rename(columns={"submission_id_ord": "ord_sid", "submission_id_ide": "ide_sid"})
    chosen = inputs.submissions
    submissions = pd.DataFrame(
        {
            "submission_id": chosen["submission_id"],
            "extracted": pd.to_datetime(chosen["extracted"]).dt.date,
            "period_to": pd.to_datetime(chosen["period_to"]).dt.date,
        }
    )
    for name, frame in (
        ("ref_pair", pairs[["ord_sid", "ide_sid"]]),
        ("ref_submission", submissions),
    ):
        con.register(f"_{name}", frame)
        con.execute(f"CREATE OR REPLACE TABLE {name} AS SELECT * FROM _{name}")
        con.unregister(f"_{name}")
