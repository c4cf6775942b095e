"""Quality, gate and out layers: per period, nothing is produced until it may be.

``core/production_input`` judges the period's completeness gates (with the run's audited
override, if any), builds the input snapshot from exactly the submissions they let through and
runs the GX suites over it, with blocking checks that no error finding survived exclusion and
no unit lost more than a set share of its records; gate verdict and override are stored in that
snapshot build. Each ``gate/<step>`` shows its step's verdict from the build, with a blocking
check that passes only when every obligated unit has delivered (or an audited override names
the missing ones); ``out/<step>`` writes a new delivery version from the same build, and the
core refuses a build whose gate for the step is closed, however the step was started.
Partitioned by period; units are data.
"""

import getpass

import pandas as pd
from dagster import (
    AssetCheckResult,
    AssetCheckSpec,
    AssetExecutionContext,
    AssetKey,
    BackfillPolicy,
    Config,
    Failure,
    MaterializeResult,
    MetadataValue,
    asset,
)

from assets.launch import GATE_CHECK
from assets.partitions import period_partitions
from assets.resources import HomeResource
from npr_pipeline.periods import Period
from npr_pipeline.production import STEPS
from npr_pipeline.production.gate import Override, OverrideError
from npr_pipeline.production.input_checks import check_period
from npr_pipeline.production.run import produce
from npr_pipeline.production.snapshot import SnapshotNotReady, stored_gates
from npr_pipeline.settings import load_settings

CURRENT = AssetKey(["core", "current_submissions"])
INPUT = AssetKey(["core", "production_input"])


class GateConfig(Config):
    """An audited override: produce without the named units (RESH ids), for a stated reason.

    Stored in the snapshot build it was judged with, so a re-execution of a step keeps it."""

    allow_missing: list[str] = []
    reason: str = ""
    requested_by: str = ""
    requested_at: str = ""  # ISO time; defaults to when the snapshot is built


def _periods(context: AssetExecutionContext) -> list[Period]:
    """One or more periods (a single-run backfill passes a range)."""
    return [Period.parse(key) for key in context.partition_keys]


def _gate_asset(step: str):
    check = AssetCheckSpec(
        GATE_CHECK,
        asset=AssetKey(["gate", step]),
        blocking=True,
        description=f"Every unit obliged to deliver for {step} in the period has delivered "
        "(ord and ide reach the period's end), or an audited override names it.",
    )

    @asset(
        key=["gate", step],
        group_name="gate",
        partitions_def=period_partitions,
        deps=[INPUT],
        check_specs=[check],
        backfill_policy=BackfillPolicy.single_run(),
        pool="warehouse",
        description=f"Completeness gate of {step}: the verdict stored in the period's input "
        "snapshot build (obligated units from registry x calendar against current deliveries "
        "that reach the period's end; the override, if any).",
    )
    def gate(context: AssetExecutionContext, home: HomeResource) -> MaterializeResult:
        npr_home = home.home()
        records, missing, unjudged = [], [], []
        for period in _periods(context):
            found = [r for r in stored_gates(npr_home, period) if r["step"] == step]
            if not found:
                unjudged.append(str(period))
                continue
            record = found[0]
            records.append(record)
            if record["gate"] != "open":
                excused = set(record["excused"])
                missing += [
                    {"period": record["period"], **m}
                    for m in record["missing"]
                    if m["reshID"] not in excused
                ]
        excused = [{"period": r["period"], "excused": r["excused"]} for r in records]
        overrides = {r["period"]: r["override"] for r in records if r["override"]}
        problems = [f"{m['reshID']} {m['name']}" for m in missing]
        problems += [f"no gate verdict in the snapshot for {p}" for p in unjudged]
        return MaterializeResult(
            metadata={
                "expected": sum(int(r["expected"]) for r in records),
                "delivered": sum(int(r["delivered"]) for r in records),
                "missing": MetadataValue.json(missing),
                "override": MetadataValue.json(overrides),
                "builds": MetadataValue.json({r["period"]: r["build_id"] for r in records}),
            },
            check_results=[
                AssetCheckResult(
                    check_name=GATE_CHECK,
                    passed=not problems,
                    metadata={
                        "missing": MetadataValue.json(missing),
                        "excused": MetadataValue.json(excused),
                    },
                    description="missing: " + ", ".join(problems)
                    if problems
                    else "every obligated unit has delivered or is excused",
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
        AssetCheckSpec(
            "no_error_findings_after_exclusion",
            asset=INPUT,
            blocking=True,
            description="After the records with error findings are left out, the GX suites "
            "find no error-severity finding left in the period's input snapshot.",
        ),
        AssetCheckSpec(
            "excluded_share_per_unit",
            asset=INPUT,
            blocking=True,
            description="No unit lost more than the allowed share (max_excluded_share in the "
            "settings) of its records to the exclusion of error records.",
        ),
    ],
    description="What production reads for the period: a snapshot of the current covering "
    "submissions (rows up to the period's end, error records excluded), validated by the GX "
    "suites; every out/<step> of the run reads this snapshot, never the lake. Judges the "
    "completeness gates first (config: an audited override) and builds the snapshot from the "
    "submissions they let through; the verdict and override are stored in the build.",
)
def production_input(
    context: AssetExecutionContext, config: GateConfig, home: HomeResource
) -> MaterializeResult:
    npr_home = home.home()
    max_share = load_settings(npr_home).max_excluded_share
    try:
        override = Override.of(
            config.allow_missing,
            config.reason,
            config.requested_by or getpass.getuser(),
            config.requested_at,
        )
        outcomes = [
            check_period(npr_home, period, context.run.run_id, max_share, override)
            for period in _periods(context)
        ]
    except OverrideError as exc:
        raise Failure(description=str(exc), allow_retries=False) from exc
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
            "checked_rows": MetadataValue.json({o.period: o.scope.as_json() for o in outcomes}),
            "gates": MetadataValue.json(
                {o.period: {g["step"]: g["gate"] for g in o.gates} for o in outcomes}
            ),
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


def _out_asset(step: str):
    @asset(
        key=["out", step],
        group_name="out",
        partitions_def=period_partitions,
        deps=[AssetKey(["gate", step]), INPUT],
        backfill_policy=BackfillPolicy.single_run(),
        pool="warehouse",
        description=f"The {step} delivery: a new version per run in warehouse.duckdb "
        "(kjernejournal rows under HOME/restricted), with lineage to the submissions and the "
        "gate verdict and override of the snapshot build it was produced from.",
    )
    def out(context: AssetExecutionContext, home: HomeResource) -> MaterializeResult:
        npr_home = home.home()
        produced = []
        for period in _periods(context):
            try:
                result = produce(npr_home, period, step, context.run.run_id)
            except SnapshotNotReady as exc:  # a closed gate or unchecked data: refused
                raise Failure(description=str(exc), allow_retries=False) from exc
            produced.append(
                {
                    "period": result.period,
                    "version": result.version,
                    "rows": result.rows,
                    "excluded_records": result.excluded,
                    "gate": result.gate.get("gate"),
                    "build_id": result.gate.get("build_id"),
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
