"""Core asset: the unit registry in the warehouse, from the newest imported version."""

from dagster import (
    AssetExecutionContext,
    AutomationCondition,
    MaterializeResult,
    MetadataValue,
    asset,
)

from assets.resources import HomeResource
from npr_pipeline.registry import current_registry
from npr_pipeline.warehouse import replace_table, writer


@asset(
    key_prefix="core",
    group_name="core",
    pool="warehouse",
    # Declarative where it fits: the registry copy refreshes itself every morning.
    automation_condition=AutomationCondition.on_cron("0 5 * * *", "Europe/Oslo"),
    description="Reporting units (RESH, orgnr, HER, RHF, obligations) as the gate checks use them.",
)
def unit_registry(context: AssetExecutionContext, home: HomeResource) -> MaterializeResult:
    """Copy the current registry into ``warehouse.duckdb`` as table ``registry``."""
    frame = current_registry(home.home()).astype(str)
    with writer(home.home()) as con:
        replace_table(con, "registry", frame)
    context.log.info("registry: %d units", len(frame))
    return MaterializeResult(
        metadata={
            "units": len(frame),
            "by_type": MetadataValue.json(frame["unit_type"].value_counts().to_dict())
            if "unit_type" in frame
            else MetadataValue.json({}),
        }
    )
