"""Both routes, one state (issue 13): the same synthetic year received by the monthly route, the
daily route and a mix of both gives the same deliveries, row for row, apart from lineage; and a
correction back in time by the daily route reaches every period that includes it in their next
runs without any submitted file being read again.

Every file goes through ``intake_directory`` (what ``npr intake`` runs: archive, gate,
validation, content checks, the daily events committed per intake batch), once per delivery
month. The production steps are the core functions the Dagster assets call (``check_period``:
gates, snapshot, GX suites, verdict; ``produce``: one delivery version), as ``npr run`` does
without starting Dagster.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import pytest

from npr_pipeline.home import Home
from npr_pipeline.intake.run import intake_directory
from npr_pipeline.periods import Period
from npr_pipeline.production import STEPS
from npr_pipeline.production.check_scope import CheckScope
from npr_pipeline.production.input_checks import check_period
from npr_pipeline.production.run import produce
from npr_pipeline.production.snapshot import build_snapshot, record_verdict, snapshot_path
from npr_pipeline.registry import current_registry
from npr_pipeline.store.batches import committed_batch
from npr_pipeline.store.lake import ORD_TABLES, table_path
from npr_pipeline.store.ledger import load_ledger
from npr_pipeline.synth.correction import write_correction
from npr_pipeline.synth.delivery import DAILY_NAME, split_by_delivery_month
from npr_pipeline.synth.run import SynthOptions, run_synth
from npr_pipeline.warehouse import reader
from tests.intake_files import prepare_test_home
from tests.soak import SOAK

YEAR, THROUGH = 2026, 4
PERIODS = ("2026-02", "2026-T1") if SOAK else ("2026-T1",)
"""T1 covers every month received; make soak adds a month (its own window) to the comparison."""
LINEAGE = ("submission_id", "line", "version", "run_id")
"""The delivery columns that name where a row came from (or which version it is in): the file
and line behind it differ by route, everything else must not."""


def receive(
    root: Path,
    route: str,
    through: int = THROUGH,
    units: int = 2,
    clock: Callable[[], datetime] | None = None,
) -> Home:
    """A HOME that has received the small year through April by ``route``: ``npr intake``'s
    core once per delivery month, over the files as the synth wrote them (the daily ones late,
    resent and duplicated; each unit's closing the last of its month's files).

    Two units (seed 5) are both ownerships, a public trust site and a private specialist, and
    on the mixed route one of each route. A third (a private institution) cost ~8 of the three
    routes' ~45 CPU-seconds and added only its forløp reports, which every route receives
    alike (reports are covered by test_intake_reports.py and test_report_assets.py)."""
    synth = root / "synth"
    run_synth(SynthOptions(out=synth, year=YEAR, through=through, units=units, seed=5,
                           episodes_per_unit_month=10, route=route))  # fmt: skip
    home = prepare_test_home(Home(root=root / "home"), synth / "registry.csv")
    for inbox in split_by_delivery_month(synth / "inbox", root):
        done = intake_directory(home, inbox, clock=clock).as_json()
        assert done["rejected"] == done["failed"] == 0, done
    return home


def run_period(home: Home, period: str, run_id: str, steps: tuple[str, ...] = STEPS) -> None:
    """Gates, snapshot and checks, then each step: what ``npr run`` materialises (``--step``
    narrows it, as for the correction, whose figures are ISF's)."""
    checks = check_period(home, Period.parse(period), run_id, 0.05)
    assert checks.passed, (checks.failed_errors, checks.over)
    assert all(g["gate"] == "open" for g in checks.gates), checks.gates
    for step in steps:
        produce(home, Period.parse(period), step, run_id)


def deliveries(
    home: Home, periods: tuple[str, ...] = PERIODS
) -> dict[tuple[str, str], list[tuple]]:
    """Every delivery table's rows per (table, period), newest version, lineage left out."""
    found = {}
    with reader(home) as con:
        tables = [t for (t,) in con.execute(
            "SELECT table_name FROM duckdb_columns() WHERE column_name IN ('version', 'period') "
            "AND table_name NOT IN ('delivery_versions', 'gate_runs') "
            "AND NOT table_name LIKE '%_current' GROUP BY 1 HAVING count(*) = 2"
        ).fetchall()]  # fmt: skip
        for table, period in itertools.product(tables, periods):
            found[(table, period)] = _rows(con, table, period)
    return found


def _rows(con: duckdb.DuckDBPyConnection, table: str, period: str) -> list[tuple]:
    columns = [c for (c,) in con.execute(
        "SELECT column_name FROM duckdb_columns() WHERE table_name = ?", [table]
    ).fetchall() if c not in LINEAGE]  # fmt: skip
    names = ", ".join(f'"{c}"' for c in columns)
    return con.execute(
        f'SELECT {names} FROM "{table}" WHERE period = ? AND version = (SELECT max(version) '
        f'FROM "{table}" WHERE period = ?) ORDER BY ALL',
        [period, period],
    ).fetchall()


@pytest.fixture(scope="module")
def routes(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Home]:
    homes = {}
    for route in ("monthly", "daily", "mixed"):
        home = receive(tmp_path_factory.mktemp(f"route-{route}"), route)
        for period in PERIODS:
            run_period(home, period, f"{route}-1")
        homes[route] = home
    return homes


@pytest.mark.soak  # make soak compares February beside T1 (PERIODS)
def test_every_delivery_is_the_same_whichever_route(routes: dict[str, Home]) -> None:
    monthly = deliveries(routes["monthly"])
    assert len(monthly) >= len(PERIODS) * 8 and any(monthly.values())
    assert sum(len(rows) for rows in monthly.values()) > 1000
    for route in ("daily", "mixed"):
        other = deliveries(routes[route])
        assert other.keys() == monthly.keys()
        for key, rows in monthly.items():
            assert other[key] == rows, (route, key)


def test_the_snapshot_names_the_daily_files_and_its_batch(routes: dict[str, Home]) -> None:
    """The version records the batch it read and every daily file behind its rows."""
    home = routes["daily"]
    with reader(home) as con:
        batch, submissions = con.execute(
            "SELECT daily_batch, submissions FROM delivery_versions WHERE step = 'isf' "
            "AND period = '2026-T1'"
        ).fetchall()[0]
    assert batch == committed_batch(home) > 0
    named = {s["submission_id"] for s in json.loads(submissions)}
    snapshot = duckdb.connect(str(snapshot_path(home, Period.parse("2026-T1"))), read_only=True)
    try:
        behind = {f for (f,) in snapshot.execute("SELECT file FROM daily_sources").fetchall()}
        read_at = snapshot.execute("SELECT DISTINCT batch FROM daily_input").fetchall()
    finally:
        snapshot.close()
    assert read_at == [(batch,)]
    assert named == behind
    ledger = load_ledger(home).set_index("submission_id").loc[sorted(named)]
    assert all(DAILY_NAME.fullmatch(Path(f).name) for f in ledger["file"])
    assert set(ledger["message_type"]) == {"NPR_KONTAKT", "NPR_HENVISNING", "NPR_PASIENT",
                                           "NPR_IDENT", "NPR_ENHET"}  # fmt: skip


def _isf(home: Home, period: str) -> dict[tuple[str, str], tuple]:
    with reader(home) as con:
        rows = con.execute(
            'SELECT unit, activity_id, main_code FROM "isf_detail_current" WHERE period = ?',
            [period],
        ).fetchall()
    return {(u, a): code for u, a, code in rows}


CORRECTED = ("2026-01", "2026-02", "2026-T1")
"""The periods the correction runs before and after the fix: January and T1 include the
corrected month and change; February does not, and must not."""


def test_a_correction_back_in_time_changes_every_period_that_includes_it(
    routes: dict[str, Home], tmp_path: Path
) -> None:
    """An M for a January contact sent in June: January and T1 change in their next runs
    (February does not), the closings' gate stays open, and no submitted file is read again
    (the inbox and HOME's archive are moved away before the runs)."""
    home = routes["daily"]
    for period in ("2026-01", "2026-02"):
        run_period(home, period, "daily-jan", ("isf",))
    before = {p: _isf(home, p) for p in CORRECTED}
    synth = home.root.parent / "synth"
    fix = write_correction(synth / "inbox", "2026-01", datetime(2026, 6, 10, 23, 30),
                           current_registry(home), load_ledger(home), tmp_path / "late",
                           wanted=set(before["2026-01"]))  # fmt: skip
    done = intake_directory(home, fix.path.parent).as_json()
    assert done["accepted"] == 1, done["rejected_by_reason"]
    # a run that read a submitted file again would fail: the inbox and the archive are gone
    synth.rename(tmp_path / "synth-away")
    home.archive.rename(tmp_path / "archive-away")
    for period in CORRECTED:
        run_period(home, period, "daily-fix", ("isf",))
    key = (fix.unit, fix.contact)
    for period in ("2026-01", "2026-T1"):
        after = _isf(home, period)
        assert before[period][key] == fix.before != fix.after == after[key], period
        assert {k: v for k, v in after.items() if k != key} == {
            k: v for k, v in before[period].items() if k != key
        }
    assert _isf(home, "2026-02") == before["2026-02"]


def _tables(path: Path) -> dict[str, list[tuple]]:
    """Every table of a snapshot file, rows sorted, but the build's own record and the gate's
    (each build records when it was built and judged)."""
    con = duckdb.connect(str(path), read_only=True)
    try:
        names = [t for (t,) in con.execute("SHOW TABLES").fetchall() if t not in ("build", "gate")]
        return {t: con.execute(f'SELECT * FROM "{t}" ORDER BY ALL').fetchall() for t in names}
    finally:
        con.close()


def test_a_daily_correction_rebuilds_the_snapshot_without_the_monthly_files(
    routes: dict[str, Home], tmp_path: Path
) -> None:
    """After an M by the daily route the monthly submissions are unchanged, so the next build
    carries the monthly rows over from the previous one: it succeeds with the monthly units'
    lake files moved away, and holds exactly what a build from the lake holds."""
    home, period = routes["mixed"], Period.parse("2026-T1")
    fix = write_correction(home.root.parent / "synth" / "inbox", "2026-01",
                           datetime(2026, 6, 10, 23, 30), current_registry(home),
                           load_ledger(home), tmp_path / "late")  # fmt: skip
    assert intake_directory(home, fix.path.parent).as_json()["accepted"] == 1
    monthly = [table_path(home, t) for t in (*ORD_TABLES, "idents")]
    assert all(p.is_dir() for p in monthly)
    for path in monthly:
        path.rename(tmp_path / f"away-{path.parent.name}-{path.name}")
    build_snapshot(home, period)
    carried = _tables(snapshot_path(home, period))
    with duckdb.connect(str(snapshot_path(home, period)), read_only=True) as con:
        main = con.execute(
            'SELECT "kodeNr" FROM diagnoses WHERE unit = ? AND "episodeID" = ? '
            "AND \"tilstNr\" = '1'",
            [fix.unit, fix.contact],
        ).fetchall()
    assert main == [(fix.after,)]
    for path in monthly:
        (tmp_path / f"away-{path.parent.name}-{path.name}").rename(path)
    snapshot_path(home, period).unlink()
    build_snapshot(home, period)
    assert carried == _tables(snapshot_path(home, period))


def test_a_carried_build_checks_the_daily_rows_and_says_so(routes: dict[str, Home]) -> None:
    """A build that carried the monthly rows over from one whose checks passed runs the suites
    over the daily units' rows alone, and the verdict and the delivery version name that build;
    after a failed verdict the next build is checked whole."""
    home, period = routes["mixed"], Period.parse("2026-T1")
    # a failed verdict first, so the next build is checked whole whatever ran before (after a
    # carried build the monthly rows' origin is the build checked whole, not the carried one)
    record_verdict(home, period, build_snapshot(home, period), "mixed-reset", passed=False)
    whole = check_period(home, period, "mixed-checked", 0.05)
    assert whole.passed and whole.scope == CheckScope(None)
    path = snapshot_path(home, period)
    with duckdb.connect(str(path), read_only=True) as con:
        passed_build = con.execute("SELECT build_id FROM build").fetchall()[0][0]
        daily = [u for (u,) in con.execute("SELECT unit FROM daily_input ORDER BY 1").fetchall()]
        everyone = con.execute("SELECT count(DISTINCT unit) FROM episodes").fetchall()[0][0]
    assert 0 < len(daily) < everyone
    checks = check_period(home, period, "mixed-scoped", 0.05)
    assert checks.passed and checks.scope.units == tuple(daily)
    with duckdb.connect(str(path), read_only=True) as con:
        daily_episodes = con.execute(
            "SELECT count(*) FROM episodes WHERE unit IN (SELECT unit FROM daily_input)"
        ).fetchall()[0][0]
        recorded = json.loads(con.execute("SELECT checked FROM verdict").fetchall()[0][0])
    assert {r.element_count for r in checks.results if r.table == "episodes"} == {daily_episodes}
    assert recorded == {"rows": "daily units", "units": daily,
                        "monthly_rows_checked_in_build": passed_build}  # fmt: skip
    page = checks.page.read_text()
    assert f"Bare dagsenhetenes rader ({len(daily)} enheter)" in page and passed_build in page
    produce(home, period, "ventetider", "mixed-scoped")
    with reader(home) as con:
        version = con.execute(
            "SELECT checks FROM delivery_versions WHERE step = 'ventetider' AND period = ? "
            "ORDER BY version DESC LIMIT 1",
            [str(period)],
        ).fetchall()[0][0]
    assert json.loads(version) == recorded
    record_verdict(home, period, build_snapshot(home, period), "mixed-failed", passed=False)
    assert check_period(home, period, "mixed-whole", 0.05).scope == CheckScope(None)


@pytest.mark.soak
@pytest.mark.skipif(not SOAK, reason="two synthetic years through December, ~1 min: make soak")
def test_the_year_delivery_is_the_same_whichever_route(tmp_path: Path) -> None:
    """The year (period 2026): its gate waits for each daily unit's December closing, and its
    deliveries equal the monthly route's row for row, as the tertials' do. Received in January
    2027 by intake's clock: the daily state counts as extracted when its newest file was
    received (``batches.received``), not when the test machine committed it."""
    after_the_year = lambda: datetime(2027, 1, 20, 12, tzinfo=UTC)  # noqa: E731 (a clock)
    homes = {route: receive(tmp_path / route, route, 12, 2, after_the_year)
             for route in ("monthly", "daily")}  # fmt: skip
    for route, home in homes.items():
        run_period(home, "2026", f"{route}-year")
    monthly, daily = (deliveries(homes[r], ("2026",)) for r in ("monthly", "daily"))
    assert any(monthly.values()) and daily.keys() == monthly.keys()
    for key, rows in monthly.items():
        assert daily[key] == rows, key
