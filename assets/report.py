"""The report layer: the deadline-day page of each period a run produced.

``report/page`` runs after every ``out/<step>`` of the run and writes
``HOME/reports/<period>/index.html`` from the current delivery versions of the period (all
four steps, also those the run did not produce: the page shows the period as it stands). Its
path is the materialisation's metadata and the run's ``npr/report`` tag, so the Dagster UI
links the page from the run.
"""

import dagster as dg

from assets.partitions import period_partitions
from assets.resources import HomeResource
from npr_pipeline.periods import Period
from npr_pipeline.production import STEPS
from npr_pipeline.report.page import write_report

REPORT = dg.AssetKey(["report", "page"])
REPORT_TAG = "npr/report"


@dg.asset(
    key=REPORT,
    group_name="report",
    partitions_def=period_partitions,
    deps=[dg.AssetKey(["out", step]) for step in STEPS],
    backfill_policy=dg.BackfillPolicy.single_run(),
    pool="warehouse",
    description="The period's deadline-day report page (HOME/reports/<period>/index.html, the "
    "earlier versions kept beside it as vNNNN.html): completeness, quality, ventetider, ISF, "
    "gjestepasient and the changes since the previous versions, read from the warehouse's "
    "current delivery versions; self-contained, offline.",
)
def report_page(context: dg.AssetExecutionContext, home: HomeResource) -> dg.MaterializeResult:
    npr_home = home.home()
    pages = {}
    for key in context.partition_keys:
        written = write_report(npr_home, Period.parse(key), context.run.run_id)
        pages[key] = written
        context.log.info("report %s: %s (%.2f s)", key, written.index, written.seconds)
    context.instance.add_run_tags(
        context.run.run_id, {REPORT_TAG: ", ".join(str(w.index) for w in pages.values())}
    )
    return dg.MaterializeResult(
        metadata={
            "pages": dg.MetadataValue.json({k: str(w.index) for k, w in pages.items()}),
            "versions": dg.MetadataValue.json({k: w.version_file.name for k, w in pages.items()}),
            "seconds": dg.MetadataValue.json({k: round(w.seconds, 2) for k, w in pages.items()}),
            **{f"report {k}": dg.MetadataValue.path(str(w.index)) for k, w in pages.items()},
        }
    )
