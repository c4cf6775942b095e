"""Core layer: per period, which submission of each unit is current and whether it covers."""

import pandas as pd
from dagster import (
    AssetExecutionContext,
    AssetKey,
    BackfillPolicy,
    MaterializeResult,
    MetadataValue,
    asset,
)

from assets.partitions import period_partitions
from assets.resources import HomeResource
from npr_pipeline.periods import Period
from npr_pipeline.production.gate import PAIR
from npr_pipeline.store.lake import current_for_period
from npr_pipeline.store.ledger import load_ledger
from npr_pipeline.warehouse import retype, writer


@asset(
    key=["core", "current_submissions"],
    group_name="core",
    partitions_def=period_partitions,
    deps=[AssetKey(["raw", "lake"])],
    pool="warehouse",
    backfill_policy=BackfillPolicy.single_run(),
    description="Per period: each unit's current ord and ide submission (newest lopenr) and "
    "whether its data reach the period's end. Production reads the lake through this table.",
)
def current_submissions(context: AssetExecutionContext, home: HomeResource) -> MaterializeResult:
    ledger = load_ledger(home.home())
    frames = []
    for key in context.partition_keys:
        frame = current_for_period(ledger, Period.parse(key))
        # ord and ide only: the report types' own consumer is reports/message_counts
        frame = frame[frame["message_type"].isin(PAIR)]
        frame.insert(0, "period", key)
        frames.append(frame)
    current = pd.concat(frames, ignore_index=True)
    with writer(home.home()) as con:
        con.execute(
            "CREATE TABLE IF NOT EXISTS current_submissions (period VARCHAR, unit VARCHAR, "
            "message_type VARCHAR, submission_id VARCHAR, lopenr BIGINT, period_to DATE, "
            "episodes BIGINT, covers BOOLEAN)"
        )
        retype(con, "current_submissions", "period_to", "DATE")  # VARCHAR before
        keys = list(context.partition_keys)
        con.execute("DELETE FROM current_submissions WHERE list_contains(?, period)", [keys])
        con.register("_current", current)
        con.execute("INSERT INTO current_submissions SELECT * FROM _current")
    covering = current[current["covers"]]
    return MaterializeResult(
        metadata={
            "units": int(current["unit"].nunique()),
            "units_covering": int(covering["unit"].nunique()),
            "episodes": int(covering.loc[covering["message_type"] == "NPR_ORD", "episodes"].sum()),
            "not_covering": MetadataValue.json(
                sorted(current.loc[~current["covers"], "unit"].unique().tolist())[:200]
            ),
        }
    )
