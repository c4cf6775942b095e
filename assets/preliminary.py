"""Preliminary layer: near-real-time extracts, refreshed by the intake, apart from the official
deliveries (issue 13: "data extracts close to real time for steering")."""

from datetime import timedelta

from dagster import (
    AssetExecutionContext,
    AssetKey,
    FreshnessPolicy,
    MaterializeResult,
    MetadataValue,
    asset,
)

from assets.resources import HomeResource
from npr_pipeline.production.daily_activity import TABLE, refresh


@asset(
    key=["preliminary", TABLE],
    group_name="preliminary",
    deps=[AssetKey(["raw", "submissions"])],
    freshness_policy=FreshnessPolicy.time_window(
        fail_window=timedelta(hours=26), warn_window=timedelta(hours=2)
    ),
    tags={"npr/status": "preliminary"},
    description="PRELIMINARY, not an official delivery: contacts per day, region (RHF), service "
    "area, ownership and financing from the daily route's consolidated state at the newest "
    "committed intake batch. Refreshed by every intake run (intake_job); later events can "
    "still change any figure. Warehouse table daily_activity, replaced whole each time.",
)
def daily_activity(context: AssetExecutionContext, home: HomeResource) -> MaterializeResult:
    done = refresh(home.home())
    context.log.info(
        "daily_activity (preliminary): %s contacts in %s rows at batch %s",
        done.contacts,
        done.rows,
        done.as_of_batch,
    )
    return MaterializeResult(
        metadata={
            "preliminary": True,
            "rows": done.rows,
            "contacts": done.contacts,
            "as_of_batch": done.as_of_batch,
            "refreshed_at": MetadataValue.timestamp(done.refreshed_at.to_pydatetime()),
        }
    )
