"""One production step for one period, end to end, as plain functions the assets call.

``produce`` reads the period's input snapshot (current covering submissions, exclusions
applied, as the checks saw them), computes the step's tables with its rules module and writes
them as a new delivery version with full lineage. ``input_quality`` is what the blocking
checks before production look at. ``open_period`` reads the same relations as views straight
from the lake (research extracts, tests).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import duckdb
import pandas as pd

from npr_pipeline import duck, reference
from npr_pipeline.home import Home
from npr_pipeline.periods import Period
from npr_pipeline.production import (
    activity,
    gjestepasient,
    isf,
    kjernejournal,
    reference_sql,
    ventetider,
)
from npr_pipeline.production.daily_inputs import DailyInput, daily_units
from npr_pipeline.production.deliveries import Frame, Lineage, write_delivery
from npr_pipeline.production.inputs import PeriodInput, period_input, register_period_views
from npr_pipeline.production.snapshot import (
    LINEAGE_COLUMNS,
    gate_record,
    open_snapshot,
    snapshot_path,
    verdict_checks,
)
from npr_pipeline.provenance import collect
from npr_pipeline.registry import current_registry
from npr_pipeline.store.batches import committed_batch
from npr_pipeline.store.ledger import load_ledger


@dataclass
class StepResult:
    """What a step produced."""

    step: str
    period: str
    version: int
    rows: dict[str, int] = field(default_factory=dict)
    excluded: int = 0
    gate: dict[str, object] = field(default_factory=dict)


def open_period(home: Home, period: Period) -> tuple[duckdb.DuckDBPyConnection, PeriodInput]:
    """An in-memory DuckDB session with the period's views and reference tables: every
    unit's current covering files, and every daily unit's state at the newest batch."""
    ledger, registry = load_ledger(home), current_registry(home)
    daily = DailyInput(tuple(daily_units(registry, period.year)), committed_batch(home))
    inputs = period_input(ledger, period, daily=daily)
    con = duck.connect()
    register_period_views(con, home, inputs)
    reference_sql.register(con, registry, period.year)
    con.register("_daily", pd.DataFrame({"batch": daily.batch, "unit": list(daily.units)}))
    con.execute("CREATE TEMP TABLE daily_input AS SELECT * FROM _daily")  # as a snapshot has
    kjernejournal.join_vault(con, home, period, inputs.submissions)
    return con, inputs


def compute_step(con: duckdb.DuckDBPyConnection, step: str, period: Period) -> dict[str, Frame]:
    """The step's output tables (pure: only reads the session's views)."""
    if step == "ventetider":
        return ventetider.compute(con, period, reference.suppression_threshold("published"))
    if step == "isf":
        tables = isf.compute(con, period)
        threshold = reference.suppression_threshold("published")
        return {**tables, "isf_activity": activity.compute(con, period, threshold)}
    if step == "gjestepasient":
        isf.price(con)  # its stays and contacts, not ISF's detail and summary (1 M rows)
        return gjestepasient.compute(con, period)
    if step == "kjernejournal":
        return kjernejournal.compute(con, period)
    raise ValueError(f"unknown step {step!r}")


def produce(home: Home, period: Period, step: str, run_id: str) -> StepResult:
    """Compute one step from the period's snapshot; write it as the next delivery version.

    The snapshot (``build_snapshot``) is what the blocking checks and the completeness gate
    passed: a step never reads the lake directly, so nothing received after the checks reaches
    a delivery unchecked, and a snapshot whose gate for ``step`` is closed is refused
    (``GateClosed``) whoever calls this. The version records the build's gate verdict and its
    override (who, when, why, which units were excused and left out).
    """
    provenance = collect(home)  # before the registry and catalogue are read
    con, submissions = open_snapshot(home, period, step)
    try:
        gate = gate_record(con, step) or {}
        daily_batch = con.execute("SELECT daily_batch FROM build").fetchall()[0][0]
        checks = verdict_checks(con)
        if step == "kjernejournal":  # the one step that reads the vault
            kjernejournal.join_vault(con, home, period, submissions)
        tables = compute_step(con, step, period)
        excluded = exclusion_summary(con)
    finally:
        con.close()
    tables[f"{step}_exclusions"] = excluded
    lineage = Lineage(
        run_id=run_id,
        submissions=submissions.to_dict("records"),
        override=_override(gate),
        official=period.official,
        provenance=provenance,
        gate=gate,
        daily_batch=daily_batch,
        checks=checks,
    )
    version = write_delivery(home, step, str(period), tables, lineage)
    rows = {name: len(frame) for name, frame in tables.items()}
    return StepResult(step, str(period), version, rows, int(excluded["records"].sum()), gate)


def _override(gate: dict[str, object]) -> dict[str, object] | None:
    """The override a version records: who, when, why, keyed to the snapshot build."""
    override = gate.get("override")
    if not override:
        return None
    return {
        **override,
        "build_id": gate["build_id"],
        "excused": gate["excused"],
        "missing_units": gate["missing"],
    }


def exclusion_summary(con: duckdb.DuckDBPyConnection) -> pd.DataFrame:
    """Records left out of production, per rule, table and unit: what every number says."""
    return con.execute(
        """SELECT check_id, "table", unit, count(DISTINCT record_id) AS records
           FROM excluded GROUP BY ALL ORDER BY ALL"""
    ).df()


def submission_lineage(inputs: PeriodInput) -> list[dict[str, str]]:
    """The submissions a period was read from, with the checksums of their archived bytes."""
    return inputs.submissions[LINEAGE_COLUMNS].astype(str).to_dict("records")


def input_quality(home: Home, period: Period, max_share: float) -> dict[str, object]:
    """The facts the blocking checks before production need, read from the period's snapshot.

    ``shares``: per unit, the share of its episodes left out; ``over``: units above
    ``max_share`` (a broken extract, not a few bad records); ``by_rule``: the exclusions per
    rule, table and unit.
    """
    con = duck.connect(snapshot_path(home, period), read_only=True)  # before the verdict
    try:
        shares = con.execute(
            """SELECT r.unit, count(*) AS episodes,
                      count(*) - count(e."episodeID") AS excluded
               FROM raw_episodes r
               LEFT JOIN episodes e ON e.submission_id = r.submission_id
                    AND e."episodeID" = r."episodeID"
               WHERE CAST(r."utDatoTid" AS DATE) <= ?
               GROUP BY r.unit ORDER BY r.unit""",
            [period.end],  # a later cumulative file's months after the period are cut, not lost
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
