"""The code location: every asset, check, schedule and sensor of npr-pipeline."""

from __future__ import annotations

from dagster import Definitions

from assets.registry import unit_registry
from assets.resources import HomeResource

defs = Definitions(
    assets=[unit_registry],
    resources={"home": HomeResource()},
)
