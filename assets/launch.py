"""``npr run``: materialise a period's production through Dagster, as a scheduler would.

Runs in-process against the Dagster instance under HOME (DAGSTER_HOME = HOME/dagster), so the
run, its logs and its asset checks show in ``dagster dev`` started with the same DAGSTER_HOME.
"""

import getpass
import os
from dataclasses import dataclass, field

from dagster import AssetSelection, DagsterInstance, materialize

from assets.core import current_submissions
from assets.intake import raw_lake
from assets.production import gates, outs, production_input
from assets.resources import HomeResource
from assets.run_guard import clear_dead_runs, launcher_tags
from npr_pipeline.home import Home


@dataclass
class RunOutcome:
    """What the CLI reports."""

    run_id: str
    success: bool
    gate_missing: dict[str, list[dict]] = field(default_factory=dict)
    quality_failures: list[str] = field(default_factory=list)
    produced: list[str] = field(default_factory=list)
    recovered: list[str] = field(default_factory=list)  # dead runs marked failed first

    @property
    def refused(self) -> bool:
        return bool(self.gate_missing or self.quality_failures)


def run_period(
    home: Home,
    period: str,
    steps: list[str],
    allow_missing: list[str],
    reason: str,
    requested_by: str | None = None,
) -> RunOutcome:
    """One Dagster run: the period's lake account, current submissions, production input, the
    steps' gates and outputs."""
    home.ensure()
    os.environ["DAGSTER_HOME"] = str(home.dagster_home)
    instance = DagsterInstance.get()
    recovered = clear_dead_runs(instance)  # a killed run must not hold the warehouse slot
    who = requested_by or getpass.getuser()
    chosen_gates = [g for g in gates if g.key.path[-1] in steps]
    chosen_outs = [o for o in outs if o.key.path[-1] in steps]
    gate_config = {"allow_missing": allow_missing, "reason": reason, "requested_by": who}
    run_config = {
        "ops": {"__".join(g.key.path): {"config": gate_config} for g in chosen_gates},
        "loggers": {"console": {"config": {"log_level": "WARNING"}}},
    }
    tags = {"npr/period": period, "npr/steps": ",".join(steps), "npr/requested_by": who}
    tags |= launcher_tags()
    if allow_missing:
        tags |= {"npr/allow_missing": ",".join(allow_missing), "npr/override_reason": reason}
    result = materialize(
        [raw_lake, current_submissions, production_input, *chosen_gates, *chosen_outs],
        instance=instance,
        partition_key=period,
        run_config=run_config,
        resources={"home": HomeResource(root=str(home.root))},
        tags=tags,
        raise_on_error=False,
        selection=AssetSelection.all(),
    )
    outcome = RunOutcome(run_id=result.run_id, success=result.success, recovered=recovered)
    for evaluation in result.get_asset_check_evaluations():
        if evaluation.passed:
            continue
        asset = evaluation.asset_key.path
        if asset[0] == "gate":
            missing = evaluation.metadata.get("missing")
            outcome.gate_missing[asset[-1]] = list(missing.value) if missing else []
        else:
            outcome.quality_failures.append(evaluation.check_name)
    outcome.produced = sorted(
        {
            event.asset_key.path[-1]
            for event in result.get_asset_materialization_events()
            if event.asset_key.path[0] == "out"
        }
    )
    return outcome
