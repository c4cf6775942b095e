"""``npr run``: materialise a period's production through Dagster, as a scheduler would.

Runs the named ``production_job`` in-process against the Dagster instance under HOME
(DAGSTER_HOME = HOME/dagster), so the run, its logs and its asset checks show in
``dagster dev`` started with the same DAGSTER_HOME. Dagster's own log lines go to the run's
event log; the operator's terminal gets progress (``progress`` is called on every step start
and end) and, with ``verbose``, Dagster's console log too. A refusal decided before launching
(a closed gate) is recorded as a short failed run of ``gate_refusal_job`` whose gate checks
fail for the period, so the UI shows it beside the runs.
"""

import json
import logging
import os
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field

from dagster import (
    AssetCheckEvaluation,
    AssetKey,
    Config,
    DagsterEventType,
    DagsterInstance,
    Definitions,
    Failure,
    OpExecutionContext,
    colored_console_logger,
    job,
    logger,
    op,
)

from assets.run_guard import clear_dead_runs, launcher_tags
from npr_pipeline.home import Home
from npr_pipeline.production.gate import GateVerdict, Override

GATE_CHECK = "all_obligated_units_delivered"


class RefusalConfig(Config):
    """What ``gate_refusal`` records: the period and, per closed step, its missing units."""

    period: str
    missing: str  # JSON: {step: [{"reshID", "name"}, ...]}


Progress = Callable[[str, str], None]
"""Called with (event, step): event is "start", "done" or "failed"; step an asset's name."""


@dataclass
class RunOutcome:
    """What the CLI reports."""

    run_id: str
    success: bool
    steps: int = 0  # Dagster steps in the run
    gates: list[dict] = field(default_factory=list)  # per chosen step, from the snapshot build
    quality_failures: list[str] = field(default_factory=list)
    deliveries: list[dict] = field(default_factory=list)  # step, version, tables
    report: str | None = None  # the period's report page, when the run wrote one
    errors: list[str] = field(default_factory=list)  # first line of each failed step's error

    @property
    def gate_missing(self) -> dict[str, list[dict]]:
        """Per step whose gate was closed in the build: its unexcused missing units."""
        return {
            g["step"]: [m for m in g["missing"] if m["reshID"] not in set(g["excused"])]
            for g in self.gates
            if g["gate"] != "open"
        }

    recovered: list[str] = field(default_factory=list)  # dead runs marked failed first

    @property
    def refused(self) -> bool:
        return bool(self.gate_missing or self.quality_failures)

    @property
    def produced(self) -> list[str]:
        return sorted({d["step"] for d in self.deliveries})


def _dagster_home(home: Home) -> DagsterInstance:
    home.ensure()
    os.environ["DAGSTER_HOME"] = str(home.dagster_home)
    return DagsterInstance.get()


def _progress_logger(progress: Progress | None):
    """A Dagster logger that reports step starts and ends to ``progress`` and nothing else."""

    class Handler(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            event = getattr(record, "dagster_meta", {}).get("dagster_event")
            if progress is None or event is None:
                return
            kinds = {
                DagsterEventType.STEP_START: "start",
                DagsterEventType.STEP_SUCCESS: "done",
                DagsterEventType.STEP_FAILURE: "failed",
            }
            kind = kinds.get(event.event_type)
            if kind and event.step_key:
                progress(kind, event.step_key.replace("__", "/"))

    @logger(description="npr run: step starts and ends to the operator's progress display.")
    def npr_progress(_init_context) -> logging.Logger:
        log = logging.getLogger(f"npr.run.{uuid.uuid4().hex}")
        log.setLevel(logging.DEBUG)
        log.propagate = False
        log.handlers = [Handler()]
        return log

    return npr_progress


def run_period(
    home: Home,
    period: str,
    steps: list[str],
    override: Override | None,
    progress: Progress | None = None,
    verbose: bool = False,
) -> RunOutcome:
    """One run of ``production_job`` for the period: its lake account, current submissions,
    the production input (gates judged with ``override``, snapshot, quality), the steps' gates
    and outputs."""
    # The asset modules (and the GX suites behind production_input) load only for a run: a
    # refusal before launching (``record_refusal``) needs none of them.
    from assets.automation import production_job
    from assets.core import current_submissions
    from assets.intake import raw_lake
    from assets.production import gates, outs, production_input
    from assets.registry import unit_registry
    from assets.report import report_page
    from assets.resources import HomeResource
    from npr_pipeline.periods import Period
    from npr_pipeline.production.snapshot import stored_gates

    instance = _dagster_home(home)
    recovered = clear_dead_runs(instance)  # a killed run must not hold the warehouse slot
    chosen_gates = [g for g in gates if g.key.path[-1] in steps]
    chosen_outs = [o for o in outs if o.key.path[-1] in steps]
    assets = [
        unit_registry,  # the registry the run judged its gates with, for analysts' SQL
        raw_lake,
        current_submissions,
        production_input,
        *chosen_gates,
        *chosen_outs,
        report_page,  # the page of the period as it stands after this run
    ]
    loggers = {"npr_progress": _progress_logger(progress)}
    if verbose:
        loggers["console"] = colored_console_logger
    defs = Definitions(
        assets=[
            unit_registry,
            raw_lake,
            current_submissions,
            production_input,
            *gates,
            *outs,
            report_page,
        ],
        jobs=[production_job],
        resources={"home": HomeResource(root=str(home.root))},
        loggers=loggers,
    )
    gate_config = (
        {
            "allow_missing": list(override.allowed_missing),
            "reason": override.reason,
            "requested_by": override.requested_by,
            "requested_at": override.requested_at,
        }
        if override
        else {}
    )
    run_config = {
        "ops": {"core__production_input": {"config": gate_config}},
        "loggers": {
            "npr_progress": {"config": {}},
            **({"console": {"config": {"log_level": "DEBUG"}}} if verbose else {}),
        },
    }
    tags = {"npr/period": period, "npr/steps": ",".join(steps), "npr/trigger": "npr run"}
    tags |= launcher_tags()  # who launched it, so a later run can tell it died
    if override:
        tags |= {
            "npr/requested_by": override.requested_by,
            "npr/allow_missing": ",".join(override.allowed_missing),
            "npr/override_reason": override.reason[:200],
        }
    result = defs.resolve_job_def(production_job.name).execute_in_process(
        run_config=run_config,
        instance=instance,
        partition_key=period,
        tags=tags,
        raise_on_error=False,
        asset_selection=[a.key for a in assets],
    )
    outcome = RunOutcome(
        run_id=result.run_id, success=result.success, steps=len(assets), recovered=recovered
    )
    for evaluation in result.get_asset_check_evaluations():
        if not evaluation.passed and evaluation.asset_key.path[0] != "gate":
            outcome.quality_failures.append(evaluation.check_name)
    for event in result.all_events:
        if event.event_type == DagsterEventType.STEP_FAILURE:
            data = event.step_failure_data
            message = (
                data.user_failure_data.description
                if data.user_failure_data and data.user_failure_data.description
                else data.error.message
                if data.error
                else "failed"
            )
            outcome.errors.append(f"{event.step_key}: {message.strip().splitlines()[0]}")
    for event in result.get_asset_materialization_events():
        key = event.asset_key.path
        if key == report_page.key.path:
            outcome.report = event.materialization.metadata["pages"].value.get(period)
        if key[0] != "out":
            continue
        versions = event.materialization.metadata["versions"].value
        outcome.deliveries += [
            {"step": key[-1], "version": v["version"], "tables": v["rows"]} for v in versions
        ]
    outcome.gates = [g for g in stored_gates(home, Period.parse(period)) if g["step"] in steps]
    return outcome


@op(
    description="A refusal decided by npr run before launching production: each closed gate's "
    "check fails for the period, with the missing units, and the run fails with them."
)
def gate_refusal(context: OpExecutionContext, config: RefusalConfig) -> None:
    closed = json.loads(config.missing)
    for step, missing in closed.items():
        context.log_event(
            AssetCheckEvaluation(
                asset_key=AssetKey(["gate", step]),
                check_name=GATE_CHECK,
                passed=False,
                partition=config.period,
                blocking=True,
                metadata={"missing": missing, "refused_by": "npr run, before launching"},
                description="missing: " + ", ".join(f"{m['reshID']} {m['name']}" for m in missing),
            )
        )
    raise Failure(
        description=f"refused: the completeness gate of {', '.join(closed)} for "
        f"{config.period} is closed",
        allow_retries=False,
    )


@job(
    description="npr run's refusals: a period's production refused before launching because "
    "a completeness gate is closed (the gate checks' history shows each one).",
    logger_defs={"quiet": _progress_logger(None)},  # the run's log only, not the terminal
)
def gate_refusal_job() -> None:
    gate_refusal()


def record_refusal(home: Home, verdict: GateVerdict, steps: list[str]) -> str:
    """Record a refusal decided before launching as a (failed) Dagster run whose gate checks
    fail for the period, with the missing units; returns its run id."""
    missing = {
        status.step: [{"reshID": m.reshID, "name": m.name} for m in status.unexcused]
        for status in verdict.closed(steps)
    }
    result = gate_refusal_job.execute_in_process(
        run_config={
            "ops": {
                "gate_refusal": {
                    "config": {"period": verdict.period, "missing": json.dumps(missing)}
                }
            },
            "loggers": {"quiet": {"config": {}}},
        },
        instance=_dagster_home(home),
        tags={"npr/period": verdict.period, "npr/steps": ",".join(steps), "npr/refused": "gate"},
        raise_on_error=False,
    )
    return result.run_id
