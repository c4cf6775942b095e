"""The report types' consumer per period: which report of each unit and type the period reads,
its records, and the catalogue's checks of them (``expectations/reports/``) by the GX engine
the monthly suites run on.

A period reads, per unit and report type, the current report that covers its window
(``period_from`` <= the window's first day, ``period_to`` >= its last; the same rule as
``npr status``) with the earliest ``period_to``: a tertial reads the tertial's report, not the
next one's year to date. Its rows (committed batches only) and the counts per unit and type go
into one DuckDB file per period, replaced atomically on every build, which the GX suites
validate; Dagster's ``reports/message_counts`` builds it and turns the results into blocking
asset checks. No unit is a partition: units are rows.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import duckdb
import pandas as pd

from npr_pipeline import duck
from npr_pipeline.atomic import atomic_path
from npr_pipeline.home import Home
from npr_pipeline.periods import Period
from npr_pipeline.quality.report_checks import report_checks
from npr_pipeline.reports import count_records, current_reports, report_types, store_counts
from npr_pipeline.store.batches import committed_batches
from npr_pipeline.store.events import events_dataset
from npr_pipeline.store.ledger import load_ledger

if TYPE_CHECKING:  # importing gx_suite imports GX (~4 CPU-s): only when the suites run
    from npr_pipeline.quality.gx_suite import CheckResult


@dataclass(frozen=True)
class ReportChecks:
    """What the period's report-type consumer found."""

    period: str
    counts: pd.DataFrame  # message_counts of the period: one row per unit and type
    results: list[CheckResult]  # per catalogue check, in catalogue order
    path: Path  # the period's DuckDB file

    @property
    def failed_errors(self) -> list[str]:
        """The error-severity checks that found something."""
        return [r.check_id for r in self.results if r.severity == "error" and not r.success]


def reports_path(home: Home, period: Period) -> Path:
    """Where the period's report-type file lives (replaced on every build)."""
    return home.root / "report_inputs" / f"{period}.duckdb"


def period_reports(ledger: pd.DataFrame, period: Period) -> pd.DataFrame:
    """Per unit and type, the current report covering the period's window with the earliest
    ``period_to``."""
    start, end = period.window
    current = current_reports(ledger)
    covers = current[
        (pd.to_datetime(current["period_from"]).dt.date <= start)
        & (pd.to_datetime(current["period_to"]).dt.date >= end)
    ]
    ordered = covers.sort_values(["period_to", "lopenr"], ascending=[True, False])
    return ordered.groupby(["unit", "message_type"], as_index=False).head(1)


def build_reports(home: Home, period: Period) -> tuple[Path, pd.DataFrame]:
    """Write the period's file: ``message_counts`` and every report table's rows of the chosen
    reports (empty tables, typed, for types nobody sent). Returns its path and the counts."""
    chosen = period_reports(load_ledger(home), period)
    counts = count_records(home, chosen)
    target = reports_path(home, period)
    target.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(target) as tmp:
        tmp.unlink()  # DuckDB refuses an existing empty file
        con = duck.connect(tmp)
        try:
            _write_tables(con, home, chosen, counts)
        finally:
            con.close()
    return target, counts


def _write_tables(
    con: duckdb.DuckDBPyConnection, home: Home, chosen: pd.DataFrame, counts: pd.DataFrame
) -> None:
    store_counts(con, counts)
    con.register("_chosen", chosen[["submission_id"]])
    if chosen.empty:  # no batches to read: every table stays empty
        con.execute("CREATE TEMP TABLE _committed (batch BIGINT)")
    else:
        con.register("_committed", committed_batches(home))
    for mtype in report_types():
        for table in mtype.tables:
            con.register("_rows", events_dataset(home, table.name))
            con.execute(
                f'CREATE TABLE "{table.name}" AS SELECT * FROM _rows WHERE submission_id IN '
                "(SELECT submission_id FROM _chosen) AND batch IN (SELECT batch FROM _committed)"
            )
            con.unregister("_rows")


def check_reports(home: Home, period: Period) -> ReportChecks:
    """Build the period's file and validate it with the report types' GX suites (GX imported
    here: loading the Dagster definitions, which import this module, must not pay for it)."""
    from npr_pipeline.quality.gx_suite import run_suites

    path, counts = build_reports(home, period)
    checks = list(report_checks())
    tables = sorted({check.table for check in checks})
    results = run_suites(path, checks, tables)
    return ReportChecks(str(period), counts, results, path)
