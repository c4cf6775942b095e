"""The catalogue as DuckDB SQL: per check, the rows that violate it.

One query per check over the submissions' lake rows (read once into temporary tables); the
violating records become findings (XPR_ERR) and, for error rules, exclusions from production.
The same catalogue is run by GX per period (``gx_suite``); this engine is the per-submission
path, where every unit needs its answer within minutes and GX's per-expectation overhead buys
nothing.
"""

from __future__ import annotations

from pathlib import Path

import duckdb
import pandas as pd
import pyarrow as pa

from npr_pipeline.quality import reference_tables
from npr_pipeline.quality.catalogue import Check, resolved_kwargs
from npr_pipeline.quality.rules import PYTHON_RULES
from npr_pipeline.store.lake import TABLES, parquet_source, schema_of

RECORD_ID = {"idents": "pid", "patients": "pasientNr"}


def _literal(value: object) -> str:
    if isinstance(value, dict) and "sql" in value:
        return f"({value['sql']})"
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, int | float):
        return repr(value)
    return "'" + str(value).replace("'", "''") + "'"


def violation_sql(check: Check, table: str | None = None) -> str:
    """A query returning the rows of ``table`` (default ``check.table``) that violate ``check``.

    GX runs the same query for the kinds it has no equivalent expectation for (``gx_suite``
    passes ``table="{table}"``), so both engines count the same rows.
    """
    kw = resolved_kwargs(check)
    table = table or check.table
    col = f'"{kw["column"]}"' if "column" in kw else None
    match check.expectation:
        case "expect_column_values_to_not_be_null":
            where = f"{col} IS NULL OR CAST({col} AS VARCHAR) = ''"
        case "expect_column_values_to_be_in_set":
            values = ", ".join(_literal(v) for v in kw["value_set"])
            where = f"{col} IS NOT NULL AND {col} NOT IN ({values})"
        case "expect_column_values_to_be_between":
            bounds = []
            if kw.get("min_value") is not None:
                bounds.append(f"{col} < {_literal(kw['min_value'])}")
            if kw.get("max_value") is not None:
                bounds.append(f"{col} > {_literal(kw['max_value'])}")
            where = f"{col} IS NOT NULL AND ({' OR '.join(bounds)})"
        case "expect_column_pair_values_a_to_be_greater_than_b":
            a, b = f'"{kw["column_A"]}"', f'"{kw["column_B"]}"'
            op = "<" if kw.get("or_equal") else "<="
            where = f"{a} IS NOT NULL AND {b} IS NOT NULL AND {a} {op} {b}"
        case "expect_column_values_to_match_regex":
            where = f"{col} IS NOT NULL AND NOT regexp_full_match({col}, {_literal(kw['regex'])})"
        case "expect_compound_columns_to_be_unique":
            cols = ", ".join(f'"{c}"' for c in kw["column_list"])
            where = (
                f"({cols}) IN (SELECT ({cols}) FROM {table} GROUP BY {cols} HAVING count(*) > 1)"
            )
        case _ if check.expectation in ROW_QUERIES:
            return kw["sql"].replace("{table}", table)
        case _:
            raise ValueError(f"{check.id}: {check.expectation} has no SQL form")
    return f"SELECT * FROM {table} WHERE {where}"


def register_tables(
    con: duckdb.DuckDBPyConnection,
    files: dict[str, list[Path]],
    submission_ids: list[str] | None = None,
    reference: bool = True,
) -> None:
    """A temporary table per lake table, read once from the given files (empty where none);
    with ``submission_ids``, only those submissions' rows (a part file may hold others); and
    the reference tables, unless ``reference`` is False (a connection that has them already).

    Tables, not views: the catalogue reads each table in ~5 of its rules, and a view over
    hundreds of small Parquet files pays the file opening and decoding again in every one
    (measured on 20 units through April: views 1.75 CPU s against copies 1.59, Arrow tables
    read by pyarrow 2.2).
    """
    where = ""
    if submission_ids is not None:
        con.register("_wanted", pa.table({"submission_id": pa.array(submission_ids, pa.string())}))
        where = " WHERE submission_id IN (SELECT submission_id FROM _wanted)"
    for table in TABLES:
        paths = [p for p in files.get(table, []) if p.exists()]
        if paths:
            source = parquet_source(paths)
        else:
            con.register(f"_{table}_empty", pa.Table.from_batches([], schema=schema_of(table)))
            source = f"_{table}_empty"
        con.execute(f"CREATE OR REPLACE TEMP TABLE {table} AS SELECT * FROM {source}{where}")
    if reference:
        reference_tables.register(con)


RESULT_COLUMNS = [
    "submission_id", "check_id", "table", "category", "severity", "threshold",
    "element_count", "unexpected_count", "share", "status", "engine_error",
]  # fmt: skip
VIOLATION_COLUMNS = [
    "check_id", "table", "severity", "submission_id", "unit", "pasientNr", "record_id", "line",
    "value",
]  # fmt: skip
ROW_QUERIES = ("unexpected_rows", "vault_rows")
"""Checks whose catalogue entry is the query itself: their rows name no violating value."""
MASKED_COLUMNS = ("fid",)
"""Columns holding a fødselsnummer: a violation shows its first six digits and ``*****``."""


def _value_sql(check: Check) -> str:
    """The violating value(s) as text for the unit's report (``NULL`` where the rule names
    no column); a fødselsnummer masked (CONTRACT.md, "Personal data in answers")."""
    kw = check.kwargs
    columns = [kw[k] for k in ("column", "column_A", "column_B") if kw.get(k)]
    columns += list(kw.get("column_list", []))

    def text(column: str) -> str:
        value = f'CAST("{column}" AS VARCHAR)'
        return f"left({value}, 6) || '*****'" if column in MASKED_COLUMNS else value

    if not columns:
        return "CAST(NULL AS VARCHAR)"
    if len(columns) == 1:
        return text(columns[0])
    parts = [f"'{c}=' || coalesce({text(c)}, '')" for c in columns]
    return " || ', ' || ".join(parts)


def run_checks(
    con: duckdb.DuckDBPyConnection, checks: list[Check], allow_synthetic_fnr: bool
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Every check, per submission: result rows (one per check and submission) and the
    violating records (check, table, submission, patient, record id, source line)."""
    # One query, not one frame per table: pandas types an empty frame's text columns as object,
    # and a batch without (say) postponements would otherwise change the results' column types.
    # Ordered: DuckDB's GROUP BY gives its groups in any order, and so did the results' rows.
    counts = (
        con.execute(
            " UNION ALL ".join(
                f"SELECT '{t}' AS tbl, submission_id, count(*) AS element_count FROM {t} GROUP BY 2"
                for t in TABLES
            )
            + " ORDER BY 1, 2"
        )
        .df()
        .rename(columns={"tbl": "table"})
    )
    errors: dict[str, str] = {}
    try:
        violations = _violations(con, checks, allow_synthetic_fnr)
    except duckdb.Error:  # a check that fails: each alone, so only that one is in error
        found: list[pd.DataFrame] = []
        for check in checks:
            try:
                found.append(_violations(con, [check], allow_synthetic_fnr))
            except duckdb.Error as exc:
                errors[check.id] = str(exc)
        violations = pd.concat(found, ignore_index=True)
    violations = violations[VIOLATION_COLUMNS]
    return _results(checks, counts, violations, errors), violations


def _results(
    checks: list[Check], counts: pd.DataFrame, violations: pd.DataFrame, errors: dict[str, str]
) -> pd.DataFrame:
    """One row per check and submission that has rows in the check's table."""
    meta = pd.DataFrame(
        [
            {
                "check_id": c.id,
                "table": c.table,
                "category": c.category,
                "severity": c.severity,
                "threshold": c.threshold,
                "engine_error": errors.get(c.id),
            }
            for c in checks
        ]
    )
    frame = meta.merge(counts, on="table", how="inner")
    unexpected = violations.groupby(["check_id", "submission_id"]).size()
    frame = frame.join(unexpected.rename("unexpected_count"), on=["check_id", "submission_id"])
    frame["unexpected_count"] = frame["unexpected_count"].fillna(0).astype("int64")
    frame["share"] = (frame["unexpected_count"] / frame["element_count"]).fillna(0.0)
    by_id = {c.id: c for c in checks}
    frame["status"] = [
        "pass" if by_id[cid].tolerates(unexpected, rows) else "fail"
        for cid, unexpected, rows in zip(
            frame["check_id"], frame["unexpected_count"], frame["element_count"], strict=True
        )
    ]
    frame.loc[frame["engine_error"].notna(), "status"] = "error"
    frame["engine_error"] = frame["engine_error"].astype("string")
    return frame[RESULT_COLUMNS]


def _violations(
    con: duckdb.DuckDBPyConnection, checks: list[Check], allow_synthetic: bool
) -> pd.DataFrame:
    """The violating records of ``checks``, normalised to VIOLATION_COLUMNS, check by check in
    catalogue order.

    One query (the checks' violations UNION ALL), not one per check: ~40 round trips a batch,
    each turned into its own frame and concatenated, cost more than the rules' scans of the
    batch's small tables. The ordinal keeps each check's rows together in catalogue order.
    """
    queries = [
        f"SELECT {n} AS _check, * FROM ({_violation_query(con, n, check, allow_synthetic)})"
        for n, check in enumerate(checks)
    ]
    found = con.execute(" UNION ALL ".join(queries)).df()
    found = found.sort_values("_check", kind="stable", ignore_index=True)
    return _as_concatenated(found.drop(columns="_check").rename(columns={"tbl": "table"}))


def _as_concatenated(found: pd.DataFrame) -> pd.DataFrame:
    """Text columns as object holding None where missing, as the concatenation of one frame per
    check typed them (a check without findings, or a column it leaves NULL, gave object), so
    the violations files keep their column types and the answers their empty fields."""
    text = [c for c in found.columns if c != "line"]
    found[text] = found[text].astype(object).where(found[text].notna(), None)
    return found


def _violation_query(
    con: duckdb.DuckDBPyConnection, number: int, check: Check, allow_synthetic: bool
) -> str:
    """The query of one check's violating records; a Python rule's bad values are found here
    and registered as ``_bad_values_<number>``."""
    record = RECORD_ID.get(check.table, check.record[0])
    names = {n for n, _ in TABLES[check.table]}
    patient = '"pid"' if check.table == "idents" else '"pasientNr"'
    patient = patient if patient.strip('"') in names else "CAST(NULL AS VARCHAR)"  # departments
    line = "line" if "line" in names else "NULL"
    projection = (
        f"'{check.id}' AS check_id, '{check.table}' AS tbl, '{check.severity}' AS severity, "
        f'submission_id, unit, {patient} AS "pasientNr", '
        f'CAST("{record}" AS VARCHAR) AS record_id, CAST({line} AS INTEGER) AS line, '
        f"{'NULL' if check.expectation in ROW_QUERIES else _value_sql(check)} AS value"
    )
    if check.expectation == "python_rule":
        column = check.kwargs["column"]
        values = con.execute(f'SELECT DISTINCT "{column}" FROM {check.table}').df()[column]
        rule = PYTHON_RULES[check.kwargs["function"]]
        bad = values[rule(values, allow_synthetic)].astype(str).tolist()
        con.register(f"_bad_values_{number}", pd.DataFrame({"value": bad}, dtype=object))
        where = f'"{column}" IN (SELECT value FROM _bad_values_{number})'
        return f"SELECT {projection} FROM {check.table} WHERE {where}"
    return f"SELECT {projection} FROM ({violation_sql(check)})"
