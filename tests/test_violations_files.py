"""A delivery's violations file exists only when its marker counts violations.

Most deliveries of a month have none: the content checks write no file for them, and the marker
(written last, the commit mark) says how many rows the delivery's file holds. Every reader
follows it: none is an empty table, a marker counting some whose file is missing is damage, and
a marker from before the count (an older HOME) has its file, empty or not.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import duckdb
import pyarrow.parquet as pq
import pytest

from npr_pipeline.home import Home
from npr_pipeline.intake.run import _LedgerState
from npr_pipeline.periods import Period
from npr_pipeline.production.inputs import InputFileError
from npr_pipeline.production.snapshot import build_snapshot, snapshot_path
from npr_pipeline.quality import submission
from npr_pipeline.quality.catalogue import load_catalogue
from npr_pipeline.quality.submission import (
    Delivery,
    check_again,
    check_deliveries,
    not_yet_checked,
    quality_file,
)
from npr_pipeline.store.ledger import load_records
from tests.intake_files import home_copy
from tests.quality_files import as_before_the_count, checked_files, violations_files

MONTHS = ("2026-01", "2026-02", "2026-03")
SNAPSHOT_TABLES = ("excluded", "patients", "episodes", "diagnoses", "procedures", "referrals")


@pytest.fixture(scope="module")
def received(received_defect_year: Path, tmp_path_factory: pytest.TempPathFactory) -> Home:
    """The defect year through intake: some deliveries with findings, most without."""
    return home_copy(received_defect_year, tmp_path_factory.mktemp("violations") / "home")


def _deliveries(home: Home) -> list[Delivery]:
    return _LedgerState(load_records(home)).deliveries()


def _marker(home: Home, delivery: Delivery) -> Path:
    return quality_file(
        home, delivery.ord.year, delivery.ord.unit, delivery.ord.submission_id, "results"
    ).with_suffix(".json")


def _counted(marker: Path) -> int:
    return json.loads(marker.read_text(encoding="utf-8"))["violations"]


def _snapshots(home: Home) -> dict[str, dict[str, list[tuple]]]:
    """Every month's snapshot built from ``home``'s files, the rows of its period tables."""
    found = {}
    for month in MONTHS:
        period = Period.parse(month)
        snapshot_path(home, period).unlink(missing_ok=True)  # else its rows are carried over
        build_snapshot(home, period)
        with duckdb.connect(str(snapshot_path(home, period)), read_only=True) as con:
            found[month] = {
                t: con.execute(f"SELECT * FROM {t} ORDER BY ALL").fetchall()
                for t in SNAPSHOT_TABLES
            }
    return found


def test_the_marker_counts_the_rows_of_the_file_or_there_is_none(received: Home) -> None:
    files = violations_files(received.root)  # also: no file where the marker counts none
    assert len(files) == len(_deliveries(received))
    counted = {marker: _counted(marker) for marker in files}
    assert any(counted.values()) and not all(counted.values()), counted
    for marker, path in files.items():
        assert (0 if path is None else pq.read_metadata(path).num_rows) == counted[marker]


def test_production_reads_an_old_home_as_the_new_layout(received: Home, tmp_path: Path) -> None:
    """The same snapshot rows, exclusions included, from markers that count (files only where
    there are violations) and from markers without the count (every delivery's file)."""
    new = _snapshots(received)
    old = home_copy(received.root, tmp_path / "old")
    for marker in (old.root / "quality").glob("*/*/*.results.json"):
        assert as_before_the_count(marker).exists()
    assert _snapshots(old) == new
    assert any(rows["excluded"] for rows in new.values()), "no exclusions: nothing is compared"


def test_a_missing_file_whose_marker_counts_some_is_damage(received: Home) -> None:
    period = Period.parse(MONTHS[0])
    build_snapshot(received, period)
    with duckdb.connect(str(snapshot_path(received, period)), read_only=True) as con:
        excluded = con.execute("SELECT DISTINCT unit, submission_id FROM excluded").fetchall()
    sids = {d.ord.submission_id: d for d in _deliveries(received)}
    delivery = next(sids[sid] for _, sid in sorted(excluded) if sid in sids)
    assert _counted(_marker(received, delivery)) > 0
    path = quality_file(received, 2026, delivery.ord.unit, delivery.ord.submission_id, "violations")
    saved = path.read_bytes()
    path.unlink()
    snapshot_path(received, period).unlink()  # else its rows are carried over, not read
    try:
        with pytest.raises(InputFileError, match=f"{path}.*its quality marker says it exists"):
            build_snapshot(received, period)
    finally:
        path.write_bytes(saved)


class _Killed(Exception):
    """The process dying at a chosen write."""


def _reports(home: Home, deliveries: list[Delivery]) -> list[Path]:
    """The XPR_ERR of the deliveries' submissions."""
    records = [r for d in deliveries for r in (d.ord, d.ide) if r is not None]
    return [home.feedback / r.submission_id / "XPR_ERR.xml" for r in records]


def _written(home: Home, deliveries: list[Delivery]) -> dict[str, object]:
    """Every file the checks wrote, by path (the batch files as their markers' rows: a rerun
    batches only the deliveries left, so its files' names are not a clean run's)."""
    reports = {str(p.relative_to(home.root)): p.read_bytes() for p in _reports(home, deliveries)}
    return checked_files(home.root) | reports


def test_a_recheck_killed_before_its_marker_is_finished_by_the_next(
    received: Home, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A delivery re-checked with a catalogue that finds nothing in it loses its file before
    its marker says so; killed in between, it is still pending, and the next run leaves what
    one clean run of that catalogue leaves (no stale file of the earlier check)."""
    home = home_copy(received.root, tmp_path / "home")
    deliveries = _deliveries(home)
    files = violations_files(home.root)
    hit = next(d for d in deliveries if files[_marker(home, d)] is not None)
    found = set(pq.read_table(files[_marker(home, hit)]).column("check_id").to_pylist())
    narrowed = [c for c in load_catalogue() if c.id not in found]
    monkeypatch.setattr(submission, "load_catalogue", lambda: narrowed)
    monkeypatch.setattr(submission, "catalogue_sha256", lambda: "narrowed")
    monkeypatch.setattr(submission, "WORKERS", 1)  # in this process: the patches hold
    write_text = submission.write_text

    def dies_at_the_marker(path: Path, text: str, durable: bool = True) -> None:
        if path == _marker(home, hit):
            raise _Killed(path)
        write_text(path, text, durable=durable)

    monkeypatch.setattr(submission, "write_text", dies_at_the_marker)
    with pytest.raises(_Killed):
        check_deliveries(home, not_yet_checked(home, deliveries), allow_synthetic_fnr=True)
    assert not files[_marker(home, hit)].exists()
    assert _counted(_marker(home, hit)) > 0  # the earlier check's marker: still pending
    assert hit in not_yet_checked(home, deliveries).deliveries

    monkeypatch.setattr(submission, "write_text", write_text)
    check_deliveries(home, not_yet_checked(home, deliveries), allow_synthetic_fnr=True)
    assert not_yet_checked(home, deliveries).deliveries == []
    assert _counted(_marker(home, hit)) == 0
    rerun = _written(home, deliveries)
    shutil.rmtree(home.root / "quality")
    for report in _reports(home, deliveries):
        report.unlink()
    check_deliveries(home, check_again(home, deliveries), allow_synthetic_fnr=True)
    assert _written(home, deliveries) == rerun
