"""The catalogue's checks of the report types (``expectations/reports/``), run on each received
report file's rows in the worker that read it, so its XPR_ERR is ready when it is committed.

Checks are data in the monthly catalogue's format (:mod:`.catalogue`) and become SQL the same
way (:func:`~.sql_engine.violation_sql`); they run over the file's own Arrow tables in an
in-memory DuckDB, so a file is judged by its content alone. A finding never rejects the file:
the report is stored and the unit is asked to correct it with a newer lopenr.
"""

from __future__ import annotations

from functools import cache

import pyarrow as pa

from npr_pipeline import duck
from npr_pipeline.feedback.reports import Finding
from npr_pipeline.quality.catalogue import REPORTS_DIR, Check, load_catalogue
from npr_pipeline.quality.sql_engine import violation_sql

MAX_FINDINGS = 1000  # per check and file: an XPR_ERR a coordinator can still read


@cache
def report_checks() -> tuple[Check, ...]:
    """Every check of the report types' tables."""
    return load_catalogue(REPORTS_DIR)


def check_report(tables: dict[str, pa.Table]) -> list[Finding]:
    """The findings of one file's tables (each table by its mapping name), in check order."""
    con = duck.connect()
    for name, table in tables.items():
        con.register(name, table)
    found: list[Finding] = []
    for check in report_checks():
        if check.table not in tables:
            continue
        record, patient = check.record[0], check.record[-1]
        rows = con.execute(
            f'SELECT CAST("{record}" AS VARCHAR), CAST("{patient}" AS VARCHAR), line '
            f"FROM ({violation_sql(check)}) ORDER BY line LIMIT {MAX_FINDINGS}"
        ).fetchall()
        found += [
            Finding(check.id, check.severity, check.message, check.fix, key, pnr, line, key)
            for key, pnr, line in rows
        ]
    con.close()
    return found
