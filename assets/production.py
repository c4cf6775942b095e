"""Gate, quality and out layers: per period, nothing is produced until it may be.

For each step a ``gate/<step>`` asset records who has delivered, with a blocking check that
passes only when every obligated unit has (or an audited override names the missing ones);
``core/production_input`` builds the period's input snapshot and runs the GX suites over it,
with blocking checks that no error finding survived exclusion and no unit lost more than a set
share of its records; ``out/<step>`` writes a new delivery version from that same snapshot.
Partitioned by period; units are data.
"""

import getpass
import json
from datetime import date

import pandas as pd
from dagster import (
    AssetCheckResult,
    AssetCheckSpec,
    AssetExecutionContext,
    AssetKey,
    BackfillPolicy,
    Config,
    MaterializeResult,
    MetadataValue,
    asset,
)

from assets.partitions import period_partitions
from assets.resources import HomeResource
from npr_pipeline.intake.ledger import load_ledger
from npr_pipeline.periods import Period
from npr_pipeline.production import STEPS
from npr_pipeline.production.gate import gate_status
from npr_pipeline.production.input_checks import check_period
from npr_pipeline.production.run import produce
from npr_pipeline.registry import current_registry
from npr_pipeline.settings import load_settings
from npr_pipeline.warehouse import reader, writer

CURRENT = AssetKey(["core", "current_submissions"])
INPUT = AssetKey(["core", "production_input"])


class GateConfig(Config):
    """An audited override: produce without the named units (RESH ids), for a stated reason."""

    allow_missing: list[str] = []
    reason: str = ""
    requested_by: str = ""


def _periods(context: AssetExecutionContext) -> list[Period]:
    """One or more periods (a single-run backfill passes a range)."""
    return [Period.parse(key) for key in context.partition_keys]


def _record_gate(home, run_id: str, status, config: GateConfig) -> None:
    with writer(home) as con:
        con.execute(
            """CREATE TABLE IF NOT EXISTS gate_runs (run_id VARCHAR, period VARCHAR,
               step VARCHAR, checked VARCHAR, expected INTEGER, delivered INTEGER,
               missing VARCHAR, allowed_missing VARCHAR, reason VARCHAR, requested_by VARCHAR,
               gate VARCHAR)"""
        )
        doc = status.as_json()
        con.execute(
            "INSERT INTO gate_runs VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [
                run_id,
                status.period,
                status.step,
                date.today().isoformat(),
                status.expected,
                status.delivered,
                json.dumps(doc["missing"]),
                json.dumps(config.allow_missing),
                config.reason or None,
                config.requested_by or None,
                doc["gate"],
            ],
        )


def _gate_asset(step: str):
    check = AssetCheckSpec(
        "all_obligated_units_delivered", asset=AssetKey(["gate", step]), blocking=True
    )

    @asset(
        key=["gate", step],
        group_name="gate",
        partitions_def=period_partitions,
        deps=[CURRENT],
        check_specs=[check],
        backfill_policy=BackfillPolicy.single_run(),
        pool="warehouse",
        description=f"Completeness gate of {step}: obligated units (registry x calendar) "
        "against current deliveries that reach the period's end.",
    )
    def gate(
        context: AssetExecutionContext, config: GateConfig, home: HomeResource
    ) -> MaterializeResult:
        npr_home = home.home()
        registry, ledger = current_registry(npr_home), load_ledger(npr_home)
        if config.allow_missing and not config.reason.strip():
            raise ValueError("an override (allow_missing) needs a reason")
        statuses = [
            gate_status(registry, ledger, period, step, date.today(), config.allow_missing)
            for period in _periods(context)
        ]
        for status in statuses:
            _record_gate(npr_home, context.run_id, status, config)
        missing = [
            {"period": s.period, "reshID": m.reshID, "name": m.name}
            for s in statuses
            for m in s.unexcused
        ]
        excused = [m.reshID for s in statuses for m in s.missing if m not in s.unexcused]
        metadata = {
            "expected": sum(s.expected for s in statuses),
            "delivered": sum(s.delivered for s in statuses),
            "missing": MetadataValue.json(missing),
            "override": MetadataValue.json(
                {
                    "allowed_missing": config.allow_missing,
                    "excused": excused,
                    "reason": config.reason,
                    "requested_by": config.requested_by or getpass.getuser(),
                }
                if config.allow_missing
                else {}
            ),
        }
        return MaterializeResult(
            metadata=metadata,
            check_results=[
                AssetCheckResult(
                    check_name="all_obligated_units_delivered",
                    passed=not missing,
                    metadata={"missing": MetadataValue.json(missing), "excused": excused},
                    description="missing: "
                    + ", ".join(f"{m['reshID']} {m['name']}" for m in missing)
                    if missing
                    else "every obligated unit has delivered",
                )
            ],
        )

    return gate


gates = [_gate_asset(step) for step in STEPS]


@asset(
    key=["core", "production_input"],
    group_name="core",
    partitions_def=period_partitions,
    deps=[CURRENT],
    backfill_policy=BackfillPolicy.single_run(),
    check_specs=[
        AssetCheckSpec("no_error_findings_after_exclusion", asset=INPUT, blocking=True),
        AssetCheckSpec("excluded_share_per_unit", asset=INPUT, blocking=True),
    ],
    description="What production reads for the period: a snapshot of the current covering "
    "submissions (rows up to the period's end, error records excluded), validated by the GX "
    "suites; every out/<step> of the run reads this snapshot, never the lake.",
)
def production_input(context: AssetExecutionContext, home: HomeResource) -> MaterializeResult:
    npr_home = home.home()
    max_share = load_settings(npr_home).max_excluded_share
    outcomes = [
        check_period(npr_home, period, context.run_id, max_share) for period in _periods(context)
    ]
    failed_errors = [row for outcome in outcomes for row in outcome.failed_errors]
    over = [row for outcome in outcomes for row in outcome.over]
    rules = pd.concat([outcome.by_rule for outcome in outcomes], ignore_index=True)
    return MaterializeResult(
        metadata={
            "excluded_records": int(rules["records"].sum()) if len(rules) else 0,
            "excluded_by_rule_and_unit": MetadataValue.md(rules.to_markdown(index=False))
            if len(rules)
            else MetadataValue.md("nothing excluded"),
            **{
                f"quality_results {outcome.period}": MetadataValue.path(str(outcome.page))
                for outcome in outcomes
            },
            "seconds": MetadataValue.json({o.period: o.seconds for o in outcomes}),
        },
        check_results=[
            AssetCheckResult(
                check_name="no_error_findings_after_exclusion",
                passed=not failed_errors,
                metadata={"failed": MetadataValue.json(failed_errors)},
            ),
            AssetCheckResult(
                check_name="excluded_share_per_unit",
                passed=not over,
                metadata={"over_limit": MetadataValue.json(over), "limit": max_share},
            ),
        ],
    )


def _override(home, run_id: str, period: str, step: str) -> dict | None:
    with reader(home) as con:
        rows = con.execute(
            """SELECT allowed_missing, reason, requested_by, missing FROM gate_runs
               WHERE run_id = ? AND period = ? AND step = ?""",
            [run_id, period, step],
        ).fetchall()
    if not rows or rows[0][0] in (None, "[]"):
        return None
    allowed, reason, requested_by, missing = rows[0]
    return {
        "allowed_missing": json.loads(allowed),
        "missing_units": json.loads(missing),
        "reason": reason,
        "requested_by": requested_by,
    }


def _out_asset(step: str):
    @asset(
        key=["out", step],
        group_name="out",
        partitions_def=period_partitions,
        deps=[AssetKey(["gate", step]), INPUT],
        backfill_policy=BackfillPolicy.single_run(),
        pool="warehouse",
        description=f"The {step} delivery: a new version per run in warehouse.duckdb "
        "(kjernejournal rows under HOME/restricted), with lineage to the submissions.",
    )
    def out(context: AssetExecutionContext, home: HomeResource) -> MaterializeResult:
        npr_home = home.home()
        produced = []
        for period in _periods(context):
            override = _override(npr_home, context.run_id, str(period), step)
            result = produce(npr_home, period, step, context.run_id, override)
            produced.append(
                {
                    "period": result.period,
                    "version": result.version,
                    "rows": result.rows,
                    "excluded_records": result.excluded,
                }
            )
            context.log.info("%s %s: version %s %s", step, period, result.version, result.rows)
        return MaterializeResult(
            metadata={
                "versions": MetadataValue.json(produced),
                "excluded_records": sum(p["excluded_records"] for p in produced),
            }
        )

    return out


outs = [_out_asset(step) for step in STEPS]
