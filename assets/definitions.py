"""The code location: every asset, check, schedule and sensor of npr-pipeline."""

from dagster import (
    AssetSelection,
    AutomationConditionSensorDefinition,
    DefaultSensorStatus,
    Definitions,
)

from assets.automation import completeness_sensor, deadline_schedule, production_job
from assets.core import current_submissions
from assets.intake import inbox_sensor, intake_job, raw_lake, raw_submissions
from assets.launch import gate_refusal_job
from assets.preliminary import daily_activity
from assets.production import gates, outs, production_input
from assets.registry import unit_registry
from assets.report import report_page
from assets.reports import message_counts
from assets.resources import HomeResource

# Named and described (Dagster's implicit default_automation_condition_sensor has neither).
registry_refresh_sensor = AutomationConditionSensorDefinition(
    "registry_refresh_sensor",
    target=AssetSelection.assets(unit_registry),
    default_status=DefaultSensorStatus.RUNNING,
    description="Evaluates the automation conditions: refreshes core/unit_registry in the "
    "warehouse every morning at 05:00 Oslo time from the newest imported registry version.",
)

defs = Definitions(
    assets=[
        raw_submissions,
        raw_lake,
        daily_activity,
        unit_registry,
        current_submissions,
        production_input,
        *gates,
        *outs,
        report_page,
        message_counts,
    ],
    jobs=[intake_job, production_job, gate_refusal_job],
    schedules=[deadline_schedule],
    sensors=[inbox_sensor, completeness_sensor, registry_refresh_sensor],
    resources={"home": HomeResource()},
)
