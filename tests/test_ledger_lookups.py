"""Intake on a ledger too large to read at every run (issue 13): keyed look-ups give the same
answers as the whole read, and the warehouse's ledger copy appends what intake committed.

Real daily files through ``intake_directory`` on a HOME whose ledger holds thousands of other
records (written through ``write_records``, the ledger's one write path): the same files go
through a copy of that HOME read the old way, and every outcome, reason and record must match.
"""

from __future__ import annotations

import shutil
from datetime import UTC, date, datetime
from functools import partial
from pathlib import Path

import duckdb
import pytest

from npr_pipeline.feedback import deliver
from npr_pipeline.home import Home
from npr_pipeline.intake import run as run_module
from npr_pipeline.intake.run import IntakeSummary, intake_directory
from npr_pipeline.store.ledger import (
    LEDGER_COLUMNS,
    LedgerRecord,
    load_ledger,
    load_records,
    write_records,
)
from npr_pipeline.store.state import state_path
from npr_pipeline.warehouse import reader, replace_table, sync_intake, writer
from tests.daily_events import henvisning, kontakt
from tests.intake_files import fill_inbox
from tests.outbox_states import outbox_states
from tests.test_intake_daily import DAILY, Files, _home

T1, T2 = "2026-03-01T10:00:00", "2026-03-02T10:00:00"
PADDING = 3_000  # records of other units: far above RECORDS_PER_FILE per file of the inbox
CLOCK = datetime(2026, 3, 5, 12, tzinfo=UTC)


def _padding(count: int, received: str = "2026-03-04T10:00:00+00:00") -> list[LedgerRecord]:
    """Accepted daily records of other units, and one of the daily unit (its lopenr 7)."""
    records = [
        LedgerRecord(
            submission_id=f"{i:016x}", checksum=f"{i:064x}", file=f"padded_{i}.xml", size=100,
            received=received, status="accepted", unit=str(800_000 + i % 900),
            message_type="NPR_KONTAKT", year=2026, lopenr=i // 900 + 1,
        )
        for i in range(1, count)
    ]  # fmt: skip
    records.append(
        LedgerRecord(
            submission_id=f"{count:016x}", checksum=f"{count:064x}", file="padded_7.xml",
            size=100, received=received, status="accepted", unit=DAILY.resh,
            message_type="NPR_KONTAKT", year=2026, lopenr=7,
        )
    )  # fmt: skip
    return records


def _outcomes(summary: IntakeSummary) -> list[tuple[str, str, list[tuple[str, str]]]]:
    return [
        (s.file, s.status, [(r.code, r.message) for r in s.reasons]) for s in summary.submissions
    ]


def _rows(con: duckdb.DuckDBPyConnection, table: str) -> list[tuple]:
    return con.execute(f"SELECT * FROM {table} ORDER BY submission_id").fetchall()


def _warehouse_matches_ledger(home: Home) -> None:
    """The warehouse's copy holds every record with the ledger's own column types (dates as
    dates), read from the ledger's table itself."""
    columns = ", ".join(LEDGER_COLUMNS)
    ledger = duckdb.connect(str(state_path(home)), read_only=True)
    try:
        whole = ledger.execute(f"SELECT {columns} FROM ledger ORDER BY submission_id").fetchall()
        kinds = ledger.execute(f"SELECT column_name, column_type FROM (DESCRIBE SELECT {columns} "
                               "FROM ledger)").fetchall()  # fmt: skip
    finally:
        ledger.close()
    with reader(home) as con:
        assert _rows(con, "ledger") == whole
        assert (
            con.execute("SELECT column_name, column_type FROM (DESCRIBE ledger)").fetchall()
            == kinds
        )


def _intake_one(home: Home, tmp_path: Path, name: str, file: Path) -> IntakeSummary:
    return intake_directory(home, fill_inbox(tmp_path / name, [file]), clock=lambda: CLOCK)


def _posted(home: Home) -> set[str]:
    """The submissions with an answer in the outbox."""
    return {s["submission_id"] for s in outbox_states(home)}


@pytest.fixture
def padded(tmp_path: Path) -> tuple[Home, Files]:
    """A HOME with two daily files received and ``PADDING`` records committed after them."""
    home = _home(tmp_path, {DAILY.resh})
    new = Files(tmp_path / "files")
    first = [
        new("kontakt", kontakt("K-1", "N", T1), lopenr=1),
        new("henvisning", henvisning("H-1", "N", T1), lopenr=1),
    ]
    intake_directory(home, fill_inbox(tmp_path / "first", first), clock=lambda: CLOCK)
    assert write_records(home, _padding(PADDING)) == []
    return home, new


def test_keyed_lookups_give_the_whole_reads_answers(
    padded: tuple[Home, Files], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    home, new = padded
    resent = sorted((tmp_path / "first").iterdir())[0]
    files = [
        new("kontakt", kontakt("K-7", "N", T2), lopenr=7),  # lopenr of a padded record
        new("kontakt", kontakt("K-9", "N", T2), lopenr=2_000),  # far above the newest, 7
        new("kontakt", kontakt("K-2", "N", T2), lopenr=2),
        new("henvisning", henvisning("H-1", "M", T2), lopenr=1),  # reuses this run's first
    ]
    inbox = fill_inbox(tmp_path / "second", files, **{"zz_resent.xml": resent.read_bytes()})
    (inbox / "zz_twice.xml").write_bytes(files[2].read_bytes())

    whole = Home(root=tmp_path / "whole")
    shutil.copytree(home.root, whole.root)
    monkeypatch.setattr(run_module, "RECORDS_PER_FILE", 10**9)  # the ledger read whole
    by_reading = intake_directory(whole, inbox, clock=lambda: CLOCK)
    monkeypatch.undo()

    def never(*args: object) -> object:
        raise AssertionError("the whole ledger was read")

    monkeypatch.setattr(run_module, "record_keys", never)  # look-ups only
    by_lookup = intake_directory(home, inbox, clock=lambda: CLOCK)

    assert _outcomes(by_lookup) == _outcomes(by_reading)
    statuses = {s.file: (s.status, [r.code for r in s.reasons]) for s in by_lookup.submissions}
    assert statuses == {
        files[0].name: ("rejected", ["lopenr_reused"]),
        files[1].name: ("rejected", ["lopenr_jump"]),
        files[2].name: ("accepted", []),
        files[3].name: ("rejected", ["lopenr_reused"]),
        "zz_resent.xml": ("duplicate", ["duplicate"]),
        "zz_twice.xml": ("duplicate", ["duplicate"]),
    }
    assert "padded_7.xml" in by_lookup.submissions[0].reasons[0].message
    monkeypatch.undo()
    assert load_records(home) == load_records(whole)
    _warehouse_matches_ledger(home)


def test_the_warehouse_copy_appends_and_catches_up_after_a_lost_sync(
    padded: tuple[Home, Files], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    home, new = padded  # the padding was committed without a sync: the copy is behind
    whole_reads = _whole_reads(monkeypatch)
    intake = partial(_intake_one, home, tmp_path)
    caught_up = intake("a", new("kontakt", kontakt("K-3", "N", T2), lopenr=3))
    assert [s.status for s in caught_up.submissions] == ["accepted"]
    assert whole_reads == [1]  # rebuilt: the copy was behind
    _warehouse_matches_ledger(home)

    appended = intake("b", new("kontakt", kontakt("K-4", "N", T2), lopenr=4))
    assert [s.status for s in appended.submissions] == ["accepted"]
    assert whole_reads == [1]  # only this run's record appended
    _warehouse_matches_ledger(home)


def _dated() -> LedgerRecord:
    """An accepted monthly record: the first with a period, after daily records without."""
    return LedgerRecord(
        submission_id="f" * 16, checksum="f" * 64, file="dated.xml", size=100,
        received="2026-03-04T11:00:00+00:00", status="accepted", unit=DAILY.resh,
        message_type="NPR_ORD", year=2026, lopenr=1,
        period_from="2026-01-01", period_to="2026-01-31",
    )  # fmt: skip


def _whole_reads(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Counts the warehouse's reads of every record of the ledger (its copy rebuilt)."""
    reads: list[int] = []
    original = run_module.sync_intake.__globals__["load_ledger"]

    def counted(*args: object, **kwargs: object) -> object:
        if not kwargs:  # no filter: every record of the ledger
            reads.append(1)
        return original(*args, **kwargs)

    monkeypatch.setattr("npr_pipeline.warehouse.load_ledger", counted)
    return reads


def test_a_copy_rebuilt_from_records_without_a_value_takes_the_first_value_appended(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A rebuilt copy whose records all lack a column (every period_from empty, as a year of
    daily files before a monthly one) appends the next record that has it, as it is."""
    home = _home(tmp_path, {DAILY.resh})
    assert write_records(home, _padding(3)) == []
    whole_reads = _whole_reads(monkeypatch)
    sync_intake(home, load_ledger(home))  # rebuilt: the copy was missing
    assert whole_reads == [1]
    dated = _dated()
    assert write_records(home, [dated]) == []
    sync_intake(home, load_ledger(home, submission_ids=[dated.submission_id]))
    assert whole_reads == [1]  # appended, not rebuilt
    with reader(home) as con:
        found = con.execute(
            "SELECT period_from, period_to FROM ledger WHERE submission_id = ?",
            [dated.submission_id],
        ).fetchall()
    assert found == [(date(2026, 1, 1), date(2026, 1, 31))]
    _warehouse_matches_ledger(home)


def test_a_copy_typed_otherwise_than_the_ledger_is_rebuilt_typed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A copy an older release typed from the records (dates as text, a column none fills
    typed NULL) is rebuilt at the next sync with the ledger's types."""
    home = _home(tmp_path, {DAILY.resh})
    assert write_records(home, _padding(3)) == []
    with writer(home) as con:
        replace_table(con, "ledger", load_ledger(home))
        con.execute("ALTER TABLE ledger ADD PRIMARY KEY (submission_id)")
    whole_reads = _whole_reads(monkeypatch)
    dated = _dated()
    assert write_records(home, [dated]) == []
    sync_intake(home, load_ledger(home, submission_ids=[dated.submission_id]))
    assert whole_reads == [1]
    _warehouse_matches_ledger(home)


def test_posting_reads_the_ledgers_ids_only_when_a_run_left_answers_unposted(
    padded: tuple[Home, Files], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    home, new = padded  # the padding was committed without posting its (absent) answers
    id_reads: list[int] = []
    original = deliver.ledger_ids

    def counted(*args: object, **kwargs: object) -> set[str]:
        id_reads.append(1)
        return original(*args, **kwargs)

    def killed(*args: object, **kwargs: object) -> None:
        raise KeyboardInterrupt("killed before the answers were posted")

    monkeypatch.setattr(deliver, "ledger_ids", counted)
    intake = partial(_intake_one, home, tmp_path)
    intake("a", new("kontakt", kontakt("K-3", "N", T2), lopenr=3))
    assert id_reads == [1]  # the padding was never posted: the ids read against posted.txt
    second = intake("b", new("kontakt", kontakt("K-4", "N", T2), lopenr=4))
    assert id_reads == [1]  # nothing left by an earlier run: this run's answers only
    assert second.submissions[0].submission_id in _posted(home)

    monkeypatch.setattr(run_module, "deliver_answers", killed)
    with pytest.raises(KeyboardInterrupt):
        intake("c", new("kontakt", kontakt("K-5", "N", T2), lopenr=5))
    monkeypatch.setattr(run_module, "deliver_answers", deliver.deliver_answers)
    rerun = intake("c", new("kontakt", kontakt("K-6", "N", T2), lopenr=6))
    assert id_reads == [1, 1]  # the killed run's answers are found and posted
    assert sorted(s.status for s in rerun.submissions) == ["accepted", "duplicate"]
    assert {s.submission_id for s in rerun.submissions} <= _posted(home)
