"""The code location: every asset, check, schedule and sensor of npr-pipeline."""

from dagster import Definitions

from assets.core import current_submissions
from assets.intake import inbox_sensor, intake_job, raw_submissions
from assets.registry import unit_registry
from assets.resources import HomeResource

defs = Definitions(
    assets=[raw_submissions, current_submissions, unit_registry],
    jobs=[intake_job],
    sensors=[inbox_sensor],
    resources={"home": HomeResource()},
)
