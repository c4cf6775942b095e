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
from great_expectations.checkpoint import UpdateDataDocsAction
from great_expectations.core import ExpectationValidationResult
from great_expectations.data_context import AbstractDataContext
from great_expectations.data_context.types.base import ProgressBarsConfig
from great_expectations.datasource.fluent import SQLDatasource
from great_expectations.execution_engine import SqlAlchemyExecutionEngine
from great_expectations.expectations.metadata_types import FailureSeverity

from npr_pipeline.quality.catalogue import Check, resolved_kwargs
from npr_pipeline.quality.gx_duckdb import apply_workaround

NOT_IN_GX = frozenset({"python_rule"})
"""Checks GX cannot express (a Python function over a column): only ``sql_engine`` runs them."""

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


def _literal(value: Any) -> str:
    """A SQL literal; ``{sql: ...}`` bounds are expressions (as in ``sql_engine``)."""
    if isinstance(value, dict) and "sql" in value:
        return f"({value['sql']})"
    if isinstance(value, int | float) and not isinstance(value, bool):
        return repr(value)
    return "'" + str(value).replace("'", "''") + "'"


def _gx_query(sql: str) -> str:
    """Catalogue SQL over ``{table}`` as a GX query over ``{batch}``.

    GX runs ``str.format`` on the query, so every other brace (regex ``{3}``) is doubled.
    """
    return sql.replace("{", "{{").replace("}", "}}").replace("{{table}}", "{batch}")


Translation = tuple[type[gxe.Expectation], dict[str, Any]]
"""A GX expectation class and its arguments (severity and meta are added for every check)."""


def _rows_where(where: str) -> Translation:
    query = _gx_query(f"SELECT * FROM {{table}} WHERE {where}")
    return gxe.UnexpectedRowsExpectation, {"unexpected_rows_query": query}


def _not_null(kw: dict, mostly: float) -> Translation:
    return gxe.ExpectColumnValuesToNotBeNull, {"column": kw["column"], "mostly": mostly}


def _in_set(kw: dict, mostly: float) -> Translation:
    args = {"column": kw["column"], "value_set": kw["value_set"], "mostly": mostly}
    return gxe.ExpectColumnValuesToBeInSet, args


def _between(kw: dict, mostly: float) -> Translation:
    """Number or ISO-date bounds go to GX; an ``{sql: ...}`` bound needs a query."""
    low, high = kw.get("min_value"), kw.get("max_value")
    if not any(isinstance(b, dict) for b in (low, high)):
        args = {"column": kw["column"], "min_value": low, "max_value": high, "mostly": mostly}
        return gxe.ExpectColumnValuesToBeBetween, args
    col = _quoted(kw["column"])
    outside = [f"{col} {op} {_literal(b)}" for op, b in (("<", low), (">", high)) if b is not None]
    return _rows_where(f"{col} IS NOT NULL AND ({' OR '.join(outside)})")


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


def _regex(kw: dict, mostly: float) -> Translation:
    """GX refuses regex for the duckdb dialect ("Regex is not supported"): DuckDB SQL instead."""
    col = _quoted(kw["column"])
    return _rows_where(
        f"{col} IS NOT NULL AND NOT regexp_full_match({col}, {_literal(kw['regex'])})"
    )


def _unique(kw: dict, mostly: float) -> Translation:
    """Every copy counts; a combination with a missing part is not judged (as ``sql_engine``)."""
    args = {
        "column_list": list(kw["column_list"]),
        "ignore_row_if": "any_value_is_missing",
        "mostly": mostly,
    }
    return gxe.ExpectCompoundColumnsToBeUnique, args


def _unexpected_rows(kw: dict, mostly: float) -> Translation:
    return gxe.UnexpectedRowsExpectation, {"unexpected_rows_query": _gx_query(kw["sql"])}


TRANSLATE: dict[str, Callable[[dict, float], Translation]] = {
    "expect_column_values_to_not_be_null": _not_null,
    "expect_column_values_to_be_in_set": _in_set,
    "expect_column_values_to_be_between": _between,
    "expect_column_pair_values_a_to_be_greater_than_b": _pair,
    "expect_column_values_to_match_regex": _regex,
    "expect_compound_columns_to_be_unique": _unique,
    "unexpected_rows": _unexpected_rows,
}


def to_expectation(check: Check) -> gxe.Expectation:
    """One catalogue check as a GX expectation; ``mostly = 1 - threshold`` where GX has it."""
    cls, args = TRANSLATE[check.expectation](resolved_kwargs(check), 1.0 - check.threshold)
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


def _add_docs_site(context: AbstractDataContext, data_docs_dir: Path) -> list[UpdateDataDocsAction]:
    """A filesystem Data Docs site (works in an ephemeral context) and the action that fills it."""
    context.add_data_docs_site(
        site_name=DOCS_SITE,
        site_config={
            "class_name": "SiteBuilder",
            "site_index_builder": {"class_name": "DefaultSiteIndexBuilder"},
            "store_backend": {
                "class_name": "TupleFilesystemStoreBackend",
                "base_directory": str(data_docs_dir),
            },
        },
    )
    return [UpdateDataDocsAction(name="data_docs", site_names=[DOCS_SITE])]


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
    actions = _add_docs_site(context, data_docs_dir) if data_docs_dir is not None else []
    checkpoint = context.checkpoints.add(
        gx.Checkpoint(
            name="npr_quality",
            validation_definitions=definitions,
            actions=actions,
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


def _within(check: Check, unexpected: int, elements: int) -> bool:
    """The catalogue's rule (as ``sql_engine``): threshold 0 means no row may fail."""
    if unexpected == 0:
        return True
    return check.threshold > 0 and elements > 0 and unexpected / elements <= check.threshold


def _to_result(
    check: Check, result: ExpectationValidationResult | None, elements: int
) -> CheckResult:
    """Our result; an exception or a missing result is a failure, never a pass."""
    error = "GX returned no result for this check" if result is None else _error_of(result)
    values = {} if result is None else result.result
    if "element_count" in values:  # a column-map expectation: GX applied mostly itself
        elements, unexpected = values["element_count"], values["unexpected_count"]
        percent = float(values.get("unexpected_percent") or 0.0)
        sample = values.get("partial_unexpected_list") or []
        observed = repr(sample[:OBSERVED_SAMPLE]) if sample else None
        success = bool(result.success)
    else:  # an UnexpectedRowsExpectation: GX fails on any row, the threshold is ours
        unexpected = int(values.get("observed_value") or 0)
        percent = 100.0 * unexpected / elements if elements else 0.0
        observed = None
        success = _within(check, unexpected, elements)
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
