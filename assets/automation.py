"""Jobs, schedules and sensors: production on the reporting calendar and on completeness.

The schedule runs every morning and starts a period's production on its first and second
submission deadlines; the sensor starts it as soon as the last obligated unit has delivered
(and again when a late correction changes what is current). Completeness is never ``eager``:
the blocking gate checks decide, not the arrival of data.
"""

import hashlib
import json
from datetime import date, timedelta

import pandas as pd
from dagster import (
    AssetKey,
    AssetSelection,
    RunRequest,
    ScheduleEvaluationContext,
    SensorEvaluationContext,
    SkipReason,
    define_asset_job,
    schedule,
    sensor,
)

from assets.resources import HomeResource
from npr_pipeline import reference
from npr_pipeline.periods import Period
from npr_pipeline.production.daily_gate import daily_gate
from npr_pipeline.production.gate import gate_statuses
from npr_pipeline.registry import current_registry
from npr_pipeline.store.lake import current_for_period
from npr_pipeline.store.ledger import load_ledger

PRODUCTION = (
    AssetSelection.assets(AssetKey(["core", "unit_registry"]))  # the analysts' registry copy
    | AssetSelection.assets(AssetKey(["raw", "lake"]))
    | AssetSelection.assets(AssetKey(["core", "current_submissions"]))
    | AssetSelection.assets(AssetKey(["core", "production_input"]))
    | AssetSelection.groups("gate", "out", "report")
)
production_job = define_asset_job(
    "production_job",
    selection=PRODUCTION,
    description="A period's production: the lake account, current submissions, the checked "
    "input snapshot, each step's completeness gate and its delivery, and the period's report "
    "page (partitioned by period, "
    "inferred from the selected assets).",
)
LOOKBACK_DAYS = 60


def deadlines_on(day: date) -> list[tuple[str, str]]:
    """(period, which deadline) for every calendar row whose deadline is ``day``."""
    found = []
    for year in (day.year - 1, day.year):
        if year not in reference.calendar_years():
            continue
        calendar = reference.calendar(year)
        for which in ("first_deadline", "second_deadline"):
            hits = calendar[calendar[which].dt.date == day]
            found += [(period, which) for period in hits["period"].unique()]
    return sorted(set(found))


@schedule(
    cron_schedule="0 7 * * *",
    job=production_job,
    execution_timezone="Europe/Oslo",
    description="Every morning at 07:00 Oslo time: on a period's first or second submission "
    "deadline, start that period's production (the completeness gates decide what is produced).",
)
def deadline_schedule(context: ScheduleEvaluationContext):
    """On a deadline day, run that period's production (the gate decides what may run)."""
    day = context.scheduled_execution_time.date()
    requests = [
        RunRequest(
            run_key=f"{period}-{which}-{day}",
            partition_key=period,
            tags={"npr/trigger": which},
        )
        for period, which in deadlines_on(day)
    ]
    return requests or SkipReason(f"no reporting deadline on {day}")


def open_periods(today: date) -> list[Period]:
    """Periods that have ended and whose first deadline is at most LOOKBACK_DAYS ago."""
    periods = []
    for year in (today.year - 1, today.year):
        if year not in reference.calendar_years():
            continue
        calendar = reference.calendar(year)
        recent = calendar[calendar["first_deadline"].dt.date >= today - timedelta(LOOKBACK_DAYS)]
        for name in recent["period"].unique():
            period = Period.parse(name)
            if period.end < today:
                periods.append(period)
    return periods


@sensor(
    job=production_job,
    minimum_interval_seconds=300,
    description="Every 5 minutes: start a recently ended period's production as soon as every "
    "obligated unit of every step has delivered, and again when a late correction changes "
    "which submissions are current.",
)
def completeness_sensor(context: SensorEvaluationContext, home: HomeResource):
    """Start a period's production once every obligated unit of every step has delivered."""
    npr_home = home.home()
    ledger = load_ledger(npr_home)
    if ledger.empty:
        return SkipReason("nothing received yet")
    registry = current_registry(npr_home)
    seen = json.loads(context.cursor) if context.cursor else {}
    today = date.today()
    requests = []
    for period in open_periods(today):
        daily = daily_gate(npr_home, registry, period)
        statuses = gate_statuses(registry, ledger, period, today, daily=daily)
        if not all(s.open for s in statuses):
            continue
        fingerprint = _fingerprint(current_for_period(ledger, period), daily.input.batch)
        if seen.get(str(period)) == fingerprint:
            continue
        seen[str(period)] = fingerprint
        requests.append(
            RunRequest(
                run_key=f"{period}-{fingerprint}",
                partition_key=str(period),
                tags={"npr/trigger": "complete"},
            )
        )
    context.update_cursor(json.dumps(seen, sort_keys=True))
    return requests or SkipReason("no period has become complete since the last run")


def _fingerprint(current: pd.DataFrame, daily_batch: int) -> str:
    """Which submissions are current and which daily batch the state is at: a change in
    either (a late correction by either route) is a new run."""
    ids = ",".join(sorted(current["submission_id"].astype(str)))
    ids += f";daily={daily_batch}" if daily_batch else ""
    return hashlib.sha256(ids.encode()).hexdigest()[:16]
