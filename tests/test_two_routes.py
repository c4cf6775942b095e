"""Both routes, one state (issue 13): the same synthetic year received by the monthly route, the
daily route and a mix of both gives the same deliveries, row for row, apart from lineage; and a
correction back in time by the daily route reaches every period that includes it in their next
runs without any submitted file being read again.

Monthly files go through ``intake_directory`` (archive, gate, validation, content checks). The
daily files are read by the real typed reader (XSD-validated) and appended to the real Delta
event tables, one committed batch per delivery month (each month's closings are its last
files), as :func:`receive_daily` does: daily intake itself is the events branch's part. The
production steps are the core functions the Dagster assets call (``check_period``: gates,
snapshot, GX suites, verdict; ``produce``: one delivery version).
"""

from __future__ import annotations

import itertools
import json
import re
import shutil
from datetime import datetime
from pathlib import Path

import duckdb
import pyarrow as pa
import pytest
from lxml import etree

from npr_pipeline.home import Home
from npr_pipeline.intake import typed_reader
from npr_pipeline.intake.run import intake_directory
from npr_pipeline.periods import Period
from npr_pipeline.production import STEPS
from npr_pipeline.production.input_checks import check_period
from npr_pipeline.production.run import produce
from npr_pipeline.production.snapshot import snapshot_path
from npr_pipeline.store.batches import begin_batch, committed_batch
from npr_pipeline.store.events import CONTEXT, append_events
from npr_pipeline.store.ledger import BatchCommit, write_records
from npr_pipeline.synth.daily import DailyFile, render_file
from npr_pipeline.synth.events import Element
from npr_pipeline.synth.run import SynthOptions, run_synth
from npr_pipeline.warehouse import reader
from tests.daily_events import unit_info
from tests.intake_files import prepare_test_home

YEAR, THROUGH = 2026, 4
PERIODS = ("2026-02", "2026-T1")
DAILY_NAME = re.compile(r"(\d+)_(\d{6})\d{2}T\d{6}_[a-z]+_(\d+)\.xml")
LINEAGE = ("submission_id", "line", "version", "run_id")
"""The delivery columns that name where a row came from (or which version it is in): the file
and line behind it differ by route, everything else must not."""


def receive_daily(home: Home, files: list[Path]) -> list[int]:
    """Append the daily files' events (in name order), one committed batch per delivery month."""
    batches = []
    for _, month in itertools.groupby(files, key=lambda p: DAILY_NAME.fullmatch(p.name)[2]):
        tables: dict[str, list[pa.Table]] = {}
        month = list(month)
        for path in month:
            unit = DAILY_NAME.fullmatch(path.name)[1]
            head = typed_reader.read_typed(path)
            assert head.ok, head.errors
            context = (path.stem, unit, str(YEAR), head.attrs["lopenr"])
            rows = typed_reader.read_typed(path, dict(zip(CONTEXT, context, strict=True)))
            for name, table in rows.tables.items():
                tables.setdefault(name, []).append(table)
        batch = begin_batch(home)
        appended = {n: pa.concat_tables(t) for n, t in tables.items()}
        write_records(
            home, [], batch=BatchCommit(batch, len(month), append_events(home, batch, appended))
        )
        batches.append(batch)
    return batches


def receive(root: Path, route: str) -> Home:
    """A HOME that has received the small year through April by ``route``."""
    synth = root / "synth"
    run_synth(SynthOptions(out=synth, year=YEAR, through=THROUGH, units=3, seed=5,
                           episodes_per_unit_month=10, route=route))  # fmt: skip
    home = prepare_test_home(Home(root=root / "home"), synth / "registry.csv")
    files = sorted((synth / "inbox").iterdir())
    monthly = root / "monthly"
    monthly.mkdir()
    for path in files:
        if not DAILY_NAME.fullmatch(path.name):
            shutil.copy(path, monthly / path.name)
    intake_directory(home, monthly)
    receive_daily(home, [p for p in files if DAILY_NAME.fullmatch(p.name)])
    return home


def run_period(home: Home, period: str, run_id: str) -> None:
    """Gates, snapshot and checks, then every step: what ``npr run`` materialises."""
    checks = check_period(home, Period.parse(period), run_id, 0.05)
    assert checks.passed, (checks.failed_errors, checks.over)
    assert all(g["gate"] == "open" for g in checks.gates), checks.gates
    for step in STEPS:
        produce(home, Period.parse(period), step, run_id)


def deliveries(home: Home) -> dict[tuple[str, str], list[tuple]]:
    """Every delivery table's rows per (table, period), newest version, lineage left out."""
    found = {}
    with reader(home) as con:
        tables = [t for (t,) in con.execute(
            "SELECT table_name FROM duckdb_columns() WHERE column_name IN ('version', 'period') "
            "AND table_name NOT IN ('delivery_versions', 'gate_runs') "
            "AND NOT table_name LIKE '%_current' GROUP BY 1 HAVING count(*) = 2"
        ).fetchall()]  # fmt: skip
        for table, period in itertools.product(tables, PERIODS):
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


def test_every_delivery_is_the_same_whichever_route(routes: dict[str, Home]) -> None:
    monthly = deliveries(routes["monthly"])
    assert len(monthly) >= 2 * 8 and any(monthly.values())
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
    assert named == behind and all(DAILY_NAME.fullmatch(f"{s}.xml") for s in named)


def _january_contact(inbox: Path, activities: set[str]) -> tuple[str, Element, str]:
    """A January contact of the daily files sent once (one N, never corrected) whose id is an
    ISF activity of January (unit, its element), and a main diagnosis code another has."""
    events: dict[tuple[str, str], list[Element]] = {}
    codes = set()
    for path in sorted(inbox.glob("*_kontakt_*.xml")):
        for element in etree.parse(path).iter("{*}Kontakt"):
            record = _element(element)
            codes.update(c[1]["kodeNr"] for c in record[2] if c[1].get("tilstNr") == "1")
            events.setdefault((path.name.split("_")[0], record[1]["kontaktID"]), []).append(record)
    for (unit, kid), (record, *more) in sorted(events.items()):
        main = [c[1]["kodeNr"] for c in record[2] if c[1].get("tilstNr") == "1"]
        january = record[1].get("innDatoTid", "").startswith("2026-01")
        if not more and january and main and (unit, kid) in activities:
            return unit, record, sorted(codes - set(main))[0]
    raise AssertionError("no January contact to correct")


def _element(element: etree._Element) -> Element:
    """An lxml element as the synth's renderer takes it (name, attributes, children)."""
    name = etree.QName(element).localname
    return (name, dict(element.attrib), [_element(child) for child in element])


def _isf(home: Home, period: str) -> dict[tuple[str, str], tuple]:
    with reader(home) as con:
        rows = con.execute(
            'SELECT unit, activity_id, main_code FROM "isf_detail_current" WHERE period = ?',
            [period],
        ).fetchall()
    return {(u, a): code for u, a, code in rows}


def test_a_correction_back_in_time_changes_every_period_that_includes_it(
    routes: dict[str, Home], tmp_path: Path
) -> None:
    """An M for a January contact sent in June: January and T1 change in their next runs
    (February does not), the closings' gate stays open, and no submitted file is read again
    (the inbox is moved away before the runs; the daily route archives nothing here)."""
    home = routes["daily"]
    run_period(home, "2026-01", "daily-jan")
    before = {p: _isf(home, p) for p in ("2026-01", *PERIODS)}
    synth = home.root.parent / "synth"
    unit, (name, attrs, children), code = _january_contact(synth / "inbox", set(before["2026-01"]))
    fixed = [
        (n, {**a, "kodeNr": code} if a.get("tilstNr") == "1" else a, c) for n, a, c in children
    ]
    sent = datetime(2026, 6, 10, 23, 30)
    correction = DailyFile("kontakt", sent, sent, ((name, {**attrs, "hendelsesstatus": "M",
        "endretTidspunkt": "2026-06-10T10:00:00"}, fixed),), lopenr=9000)  # fmt: skip
    path = tmp_path / correction.name(unit)
    path.write_bytes(render_file(unit_info(unit), correction, seed=1))
    synth.rename(tmp_path / "synth-away")  # a run that read a submitted file would fail
    receive_daily(home, [path])
    for period in ("2026-01", *PERIODS):
        run_period(home, period, "daily-fix")
    key = (unit, attrs["kontaktID"])
    for period in ("2026-01", "2026-T1"):
        after = _isf(home, period)
        assert before[period][key] != code and after[key] == code, period
        assert {k: v for k, v in after.items() if k != key} == {
            k: v for k, v in before[period].items() if k != key
        }
    assert _isf(home, "2026-02") == before["2026-02"]
