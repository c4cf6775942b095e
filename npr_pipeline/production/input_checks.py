"""The blocking checks before production, for one period: build the snapshot, check it, judge.

``core/production_input`` calls ``check_period`` for each period it materialises (and the
quality benchmark times the same call): the period's completeness gates are judged (with the
run's audited override, if any) and the input snapshot is built from what they let through,
the GX suites of the catalogue run over it (Data Docs and our offline results page under
HOME/data_docs/<period>), the exclusion shares are computed, and the verdict is written into
the snapshot so no step publishes rows that failed.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

from npr_pipeline.home import Home
from npr_pipeline.periods import Period
from npr_pipeline.production.check_scope import CheckScope, check_scope, scoped_file
from npr_pipeline.production.gate import Override, record_gate_runs
from npr_pipeline.production.run import input_quality
from npr_pipeline.production.snapshot import (
    build_snapshot,
    record_verdict,
    snapshot_path,
    stored_gates,
)
from npr_pipeline.quality.catalogue import Check, load_catalogue
from npr_pipeline.quality.results_page import GX_DOCS, write_results_page

if TYPE_CHECKING:  # importing gx_suite imports GX (seconds): only when the suites run
    from npr_pipeline.quality.gx_suite import CheckResult

GX_TABLES = ["episodes", "diagnoses", "procedures", "referrals", "patients", "idents"]


@dataclass
class PeriodChecks:
    """What the two blocking checks report for one period."""

    period: str
    results: list[CheckResult]
    failed_errors: list[dict[str, object]]  # error-severity checks still failing
    over: list[dict[str, object]]  # units above the excluded share
    by_rule: pd.DataFrame  # exclusions per rule, table and unit
    page: Path  # the offline results page
    seconds: dict[str, float] = field(default_factory=dict)  # per phase, for the operator
    gates: list[dict[str, object]] = field(default_factory=list)  # per step, as stored
    scope: CheckScope = CheckScope(None)  # which rows the suites checked

    @property
    def passed(self) -> bool:
        return not self.failed_errors and not self.over


def check_period(
    home: Home, period: Period, run_id: str, max_share: float, override: Override | None = None
) -> PeriodChecks:
    """Gates, snapshot, GX suites, results page, exclusion shares and verdict for one period."""
    started = time.perf_counter()
    build_id = build_snapshot(home, period, override)
    gates = stored_gates(home, period)
    record_gate_runs(home, run_id, gates)  # the override's audit row, before anything can fail
    built = time.perf_counter()
    checks = list(load_catalogue())
    docs = home.root / "data_docs" / str(period)
    db = snapshot_path(home, period)
    scope = check_scope(db)
    results = _run_suites(db, scope, checks, docs / GX_DOCS)
    validated = time.perf_counter()
    page = write_results_page(
        docs, str(period), checks, results, datetime.now().astimezone(), scope.describe()
    )
    facts = input_quality(home, period, max_share)
    seconds = {
        "snapshot": built - started,
        "gx_suites": validated - built,
        "page_and_shares": time.perf_counter() - validated,
    }
    outcome = PeriodChecks(
        period=str(period),
        results=results,
        failed_errors=[
            {"period": str(period), "check": r.check_id, "unexpected": r.unexpected_count}
            for r in results
            if r.severity == "error" and not r.success
        ],
        over=[
            {"period": str(period), "unit": row.unit, "share": round(float(row.share), 4)}
            for row in facts["over"].itertuples(index=False)
        ],
        by_rule=facts["by_rule"].assign(period=str(period)),
        page=page,
        seconds=seconds,
        gates=gates,
        scope=scope,
    )
    record_verdict(home, period, build_id, run_id, outcome.passed, scope.as_json())
    return outcome


def _run_suites(
    db: Path, scope: CheckScope, checks: list[Check], data_docs: Path
) -> list[CheckResult]:
    """The GX suites over the rows ``scope`` names: the snapshot itself, or a file of the daily
    units' rows; none at all when a carried build has no daily unit (nothing changed since the
    build whose checks passed, so GX is not even imported)."""
    if scope.units == ():
        return []
    from npr_pipeline.quality.gx_suite import run_suites

    target = db if scope.units is None else scoped_file(db, scope)
    return run_suites(target, checks, GX_TABLES, data_docs_dir=data_docs)
