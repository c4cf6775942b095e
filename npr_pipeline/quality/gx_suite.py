"""The catalogue as GX Core suites, run per period on a DuckDB file (our GX wrapper).

Why GX at all: per period the register wants GX's validation results and Data Docs as the
auditable record; the per-submission path stays on ``sql_engine``. Why this shape (see
docs/quality-engine.md): GX on pandas needed a minute and 3.5 GB for 5 M episodes, GX on a SQL
data source over a DuckDB file a few seconds, so GX runs on duckdb-engine with the one
work-around in ``gx_duckdb``. The context is ephemeral: suites are rebuilt from the catalogue
every run, so nothing GX-specific is stored or can drift from ``expectations/*.yaml``.

The caller creates the tables (or views) to validate, and the ``ref_*`` tables the SQL checks
join, in the DuckDB file, and closes its own connection before calling ``run_suites`` (GX opens
the file read-only).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import great_expectations as gx
import great_expectations.expectations as gxe
import sqlalchemy as sa
from great_expectations.checkpoint import CheckpointResult
from great_expectations.core import ExpectationValidationResult
from great_expectations.data_context import AbstractDataContext
from great_expectations.data_context.types.base import ProgressBarsConfig
from great_expectations.data_context.types.resource_identifiers import (
    ExpectationSuiteIdentifier,
    ValidationResultIdentifier,
)
from great_expectations.datasource.fluent import SQLDatasource
from great_expectations.execution_engine import SqlAlchemyExecutionEngine
from great_expectations.expectations.metadata_types import FailureSeverity

from npr_pipeline.quality.catalogue import Check, resolved_kwargs
from npr_pipeline.quality.gx_duckdb import apply_workaround
from npr_pipeline.quality.gx_views import VIEWS_MODULE
from npr_pipeline.quality.sql_engine import violation_sql

NOT_IN_GX = frozenset({"python_rule", "vault_rows"})
"""Checks GX does not run, only ``sql_engine``: a Python function over a column, and queries over
the identity vault's numbers (the snapshot GX reads holds none)."""

SEVERITY = {"error": FailureSeverity.CRITICAL, "warning": FailureSeverity.WARNING}
DOCS_SITE = "npr_quality"
OBSERVED_SAMPLE = 10


@dataclass(frozen=True)
class CheckResult:
    """One check on one table, in our terms rather than GX's result dictionaries."""

    check_id: str
    table: str
    category: str
    severity: str
    success: bool
    element_count: int
    unexpected_count: int
    unexpected_percent: float
    observed: str | None
    error: str | None


# --- catalogue check -> GX expectation -------------------------------------------------------


def _quoted(column: str) -> str:
    return '"' + column.replace('"', '""') + '"'


def _gx_query(sql: str) -> str:
    """Catalogue SQL over ``{table}`` as a GX query over ``{batch}``.

    GX runs ``str.format`` on the query, so every other brace (regex ``{3}``) is doubled.
    """
    return sql.replace("{", "{{").replace("}", "}}").replace("{{table}}", "{batch}")


Translation = tuple[type[gxe.Expectation], dict[str, Any]]
"""A GX expectation class and its arguments (severity and meta are added for every check)."""


def record_keys(check: Check) -> list[str]:
    """The columns that name a violating record: its submission, unit and record columns."""
    return list(dict.fromkeys(["submission_id", "unit", *check.record]))


def _rows(check: Check) -> Translation:
    """The SQL engine's own query (``sql_engine.violation_sql``), projected to the record keys.

    Same rows, so the same count, as the per-submission engine; the projection keeps every
    other column (values, and whatever a table might hold about a person) out of GX's results
    and Data Docs, whatever result format is asked for.
    """
    keys = ", ".join(_quoted(c) for c in record_keys(check))
    query = f"SELECT {keys} FROM ({violation_sql(check, '{table}')}) AS unexpected"
    return gxe.UnexpectedRowsExpectation, {"unexpected_rows_query": _gx_query(query)}


def _in_set(kw: dict, mostly: float) -> Translation:
    args = {"column": kw["column"], "value_set": kw["value_set"], "mostly": mostly}
    return gxe.ExpectColumnValuesToBeInSet, args


def _between(kw: dict, mostly: float) -> Translation:
    """Number or ISO-date bounds (an ``{sql: ...}`` bound goes to ``_rows``)."""
    args = {
        "column": kw["column"],
        "min_value": kw.get("min_value"),
        "max_value": kw.get("max_value"),
        "mostly": mostly,
    }
    return gxe.ExpectColumnValuesToBeBetween, args


def _pair(kw: dict, mostly: float) -> Translation:
    """A row with either value missing is not judged (as in ``sql_engine``)."""
    args = {
        "column_A": kw["column_A"],
        "column_B": kw["column_B"],
        "or_equal": bool(kw.get("or_equal", False)),
        "ignore_row_if": "either_value_is_missing",
        "mostly": mostly,
    }
    return gxe.ExpectColumnPairValuesAToBeGreaterThanB, args


def _unique(kw: dict, mostly: float) -> Translation:
    """Every copy counts; a combination with a missing part is not judged (as ``sql_engine``)."""
    args = {
        "column_list": list(kw["column_list"]),
        "ignore_row_if": "any_value_is_missing",
        "mostly": mostly,
    }
    return gxe.ExpectCompoundColumnsToBeUnique, args


TRANSLATE: dict[str, Callable[[dict, float], Translation] | None] = {
    "expect_column_values_to_not_be_null": None,  # GX counts NULL only, the catalogue also ''
    "expect_column_values_to_be_in_set": _in_set,
    "expect_column_values_to_be_between": _between,
    "expect_column_pair_values_a_to_be_greater_than_b": _pair,
    "expect_column_values_to_match_regex": None,  # "Regex is not supported for dialect duckdb"
    "expect_compound_columns_to_be_unique": _unique,
    "unexpected_rows": None,
}
"""Catalogue kinds with a GX expectation of the same meaning; ``None``: the SQL engine's query."""


def _translate(check: Check) -> Translation:
    kw = resolved_kwargs(check)
    native = TRANSLATE[check.expectation]
    if native is None or any(isinstance(kw.get(b), dict) for b in ("min_value", "max_value")):
        return _rows(check)
    return native(kw, 1.0 - check.threshold)


def to_expectation(check: Check) -> gxe.Expectation:
    """One catalogue check as a GX expectation; ``mostly = 1 - threshold`` where GX has it."""
    cls, args = _translate(check)
    meta = {
        "check_id": check.id,
        "table": check.table,
        "category": check.category,
        "severity": check.severity,
        "threshold": check.threshold,
        "message": check.message,
        "fix": check.fix,
    }
    return cls(**args, severity=SEVERITY[check.severity], meta=meta)


def build_suite(checks: Sequence[Check], table: str) -> gx.ExpectationSuite:
    """The suite of ``table``: every check of that table that GX can express."""
    chosen = [c for c in checks if c.table == table and c.expectation not in NOT_IN_GX]
    unknown = sorted({c.expectation for c in chosen} - TRANSLATE.keys())
    if unknown:
        raise ValueError(f"no GX translation for {unknown}")
    return gx.ExpectationSuite(
        name=f"npr_{table}", expectations=[to_expectation(c) for c in chosen]
    )


# --- running ---------------------------------------------------------------------------------


def _row_counts(engine: SqlAlchemyExecutionEngine, tables: Sequence[str]) -> dict[str, int]:
    """Rows per table: the denominator of SQL-query checks, whose GX result has none.

    Counted over GX's own connection: a second DuckDB connection to the file in this process
    would need duckdb-engine's exact configuration.
    """
    query = "SELECT count(*) FROM {}"
    return {t: engine.execute_query(sa.text(query.format(_quoted(t)))).scalar() for t in tables}


def _add_docs_site(context: AbstractDataContext, data_docs_dir: Path) -> None:
    """A filesystem Data Docs site (works in an ephemeral context), filled by ``_build_docs``."""
    page = {"module_name": VIEWS_MODULE, "class_name": "PageView"}  # templates compiled once
    context.add_data_docs_site(
        site_name=DOCS_SITE,
        site_config={
            "class_name": "SiteBuilder",
            "site_index_builder": {
                "class_name": "DefaultSiteIndexBuilder",
                "view": {"module_name": VIEWS_MODULE, "class_name": "IndexPageView"},
            },
            "site_section_builders": {
                "expectations": {"view": page},
                "validations": {"view": page},
                "profiling": {"view": page},
            },
            "store_backend": {
                "class_name": "TupleFilesystemStoreBackend",
                "base_directory": str(data_docs_dir),
            },
        },
    )


def _build_docs(context: AbstractDataContext, outcome: CheckpointResult) -> None:
    """The site's pages of every validation of the run and its suite, and the index, built once.

    Not GX's ``UpdateDataDocsAction``: it rebuilds the site (index, static files, every
    template compiled afresh) once per validation result, six times a period, which cost
    about 40 % of ``check_period``; one build after the checkpoint writes the same pages.
    """
    resources: list[ValidationResultIdentifier | ExpectationSuiteIdentifier] = []
    for identifier, result in outcome.run_results.items():
        resources += [identifier, ExpectationSuiteIdentifier(name=result.suite_name)]
    context.build_data_docs(site_names=[DOCS_SITE], resource_identifiers=resources)


def _definition(
    context: AbstractDataContext, source: SQLDatasource, checks: Sequence[Check], table: str
) -> gx.ValidationDefinition:
    """The whole table as one batch, validated against the table's suite."""
    asset = source.add_table_asset(table, table_name=table)
    return context.validation_definitions.add(
        gx.ValidationDefinition(
            name=table,
            data=asset.add_batch_definition_whole_table("whole_table"),
            suite=context.suites.add(build_suite(checks, table)),
        )
    )


def _validate(
    db_path: Path, checks: Sequence[Check], tables: Sequence[str], data_docs_dir: Path | None
) -> tuple[list[ExpectationValidationResult], dict[str, int]]:
    """One validation per table in one checkpoint, and the tables' row counts.

    Both SQLAlchemy engines GX made (the data source's and the execution engine's) are disposed
    afterwards, so the caller can open the file for writing again.
    """
    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = ProgressBarsConfig(globally=False)
    source = context.data_sources.add_sql(
        name="npr_quality",
        connection_string=f"duckdb:///{db_path}",
        kwargs={"connect_args": {"read_only": True}},
    )
    definitions = [_definition(context, source, checks, table) for table in tables]
    checkpoint = context.checkpoints.add(
        gx.Checkpoint(
            name="npr_quality",
            validation_definitions=definitions,
            result_format={"result_format": "SUMMARY"},
        )
    )
    engine = source.get_execution_engine()
    try:
        outcome = checkpoint.run()
        counts = _row_counts(engine, tables)
    finally:
        engine.close()
        source.get_engine().dispose()
    if data_docs_dir is not None:
        _add_docs_site(context, data_docs_dir)
        _build_docs(context, outcome)
    return [r for run in outcome.run_results.values() for r in run.results], counts


def _error_of(result: ExpectationValidationResult) -> str | None:
    """GX's exception messages for one expectation (it reports them per metric or at the top)."""
    info = result.exception_info or {}
    entries = [info] if "raised_exception" in info else list(info.values())
    messages = [
        str(e.get("exception_message") or "exception inside GX")
        for e in entries
        if isinstance(e, dict) and e.get("raised_exception")
    ]
    if not messages and not result.result:
        messages = ["GX returned no result values"]
    return "; ".join(dict.fromkeys(messages)) or None


def _to_result(
    check: Check, result: ExpectationValidationResult | None, elements: int
) -> CheckResult:
    """Our result; an exception or a missing result is a failure, never a pass."""
    error = "GX returned no result for this check" if result is None else _error_of(result)
    values = {} if result is None else result.result
    if "element_count" in values:  # a column-map expectation
        elements = values["element_count"]
        unexpected = values["unexpected_count"] or 0  # GX gives None for an empty table
        sample = values.get("partial_unexpected_list") or []
        observed = repr(sample[:OBSERVED_SAMPLE]) if sample else None
    else:  # an UnexpectedRowsExpectation: a count of rows
        unexpected = int(values.get("observed_value") or 0)
        observed = None
    # The catalogue's rule over all rows, as the SQL engine applies it. Not GX's verdict: GX's
    # ``mostly`` is a share of the non-missing values, and it fails a query check on any row.
    percent = 100.0 * unexpected / elements if elements else 0.0
    success = check.tolerates(unexpected, elements)
    return CheckResult(
        check_id=check.id,
        table=check.table,
        category=check.category,
        severity=check.severity,
        success=success and error is None,
        element_count=elements,
        unexpected_count=unexpected,
        unexpected_percent=percent,
        observed=observed,
        error=error,
    )


def run_suites(
    db_path: Path,
    checks: Sequence[Check],
    tables: Sequence[str],
    data_docs_dir: Path | None = None,
) -> list[CheckResult]:
    """Validate ``tables`` of the DuckDB file against their catalogue checks with GX.

    Results come back in catalogue order; ``data_docs_dir`` (if given) receives a GX Data Docs
    site whose ``index.html`` links the suites and validation results of this run. That site
    loads its CSS and scripts from public CDNs, so it is the raw record for a data engineer;
    the page people open is ``results_page.write_results_page``'s, rendered from these results.
    """
    apply_workaround()
    results, counts = _validate(db_path, checks, tables, data_docs_dir)
    by_id = {r.expectation_config.meta.get("check_id"): r for r in results}
    return [
        _to_result(check, by_id.get(check.id), counts[check.table])
        for check in checks
        if check.table in tables and check.expectation not in NOT_IN_GX
    ]
