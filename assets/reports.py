"""The report types' consumer (KPP, forløp, XPR_VTK, TSB): ``reports/message_counts``, per
period, the report each unit sent of each type for the period with its number of records, the
rows in one DuckDB file per period, validated by the GX suites of ``expectations/reports/``.
Each catalogue check is an asset check, blocking: an error finding stops what depends on the
counts. Partitioned by period; units are rows, never partitions.
"""

from dagster import (
    AssetCheckResult,
    AssetCheckSeverity,
    AssetCheckSpec,
    AssetExecutionContext,
    AssetKey,
    MaterializeResult,
    MetadataValue,
    asset,
)

from assets.partitions import period_partitions
from assets.resources import HomeResource
from npr_pipeline.periods import Period
from npr_pipeline.quality.report_checks import report_checks
from npr_pipeline.report_inputs import check_reports

COUNTS = AssetKey(["reports", "message_counts"])
RAW = AssetKey(["raw", "submissions"])
SEVERITY = {"error": AssetCheckSeverity.ERROR, "warning": AssetCheckSeverity.WARN}


@asset(
    key=COUNTS,
    group_name="reports",
    partitions_def=period_partitions,
    deps=[RAW],
    check_specs=[
        AssetCheckSpec(check.id, asset=COUNTS, blocking=True, description=check.message)
        for check in report_checks()
    ],
    description="Per period, per unit and report type (NPR_KPP, NPR_FORLOP, XPR_VTK, "
    "NPR_TSB): the current report covering the period and its number of records, with the "
    "report tables' rows in HOME/report_inputs/<period>.duckdb; each check of "
    "expectations/reports/ runs on them through the GX suites and is a blocking asset check.",
)
def message_counts(context: AssetExecutionContext, home: HomeResource) -> MaterializeResult:
    outcome = check_reports(home.home(), Period.parse(context.partition_key))
    counts = outcome.counts
    per_type = counts.groupby("message_type")["unit"].nunique().to_dict() if len(counts) else {}
    context.log.info("report types of %s: units per type %s", outcome.period, per_type)
    preview = counts.astype(str).to_markdown(index=False) if len(counts) else "no reports"
    return MaterializeResult(
        metadata={
            "units_per_type": MetadataValue.json({k: int(v) for k, v in per_type.items()}),
            "records": int(counts["records"].sum()) if len(counts) else 0,
            "message_counts": MetadataValue.md(preview),
            "path": MetadataValue.path(str(outcome.path)),
        },
        check_results=[
            AssetCheckResult(
                check_name=result.check_id,
                passed=result.success,
                severity=SEVERITY[result.severity],
                metadata={
                    "table": result.table,
                    "rows": result.element_count,
                    "unexpected": result.unexpected_count,
                    "error": result.error or "",
                },
            )
            for result in outcome.results
        ],
    )
