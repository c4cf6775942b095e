"""The code location: every asset, check, schedule and sensor of npr-pipeline."""

from dagster import Definitions

from assets.automation import completeness_sensor, deadline_schedule, production_job
from assets.core import current_submissions
from assets.intake import inbox_sensor, intake_job, raw_lake, raw_submissions
from assets.launch import gate_refusal_job
from assets.production import gates, outs, production_input
from assets.registry import unit_registry
from assets.resources import HomeResource

defs = Definitions(
    assets=[
        raw_submissions,
        raw_lake,
        unit_registry,
        current_submissions,
        production_input,
        *gates,
        *outs,
    ],
    jobs=[intake_job, production_job, gate_refusal_job],
    schedules=[deadline_schedule],
    sensors=[inbox_sensor, completeness_sensor],
    resources={"home": HomeResource()},
)
