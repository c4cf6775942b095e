"""Intake as a whole: idempotent reruns, recovery from a kill, and cumulative replacement.

NPR submissions are cumulative (each file holds the year so far), so "current" must be the
newest accepted file of a unit, message type and year whatever order files arrive in, and
the ledger must keep every version. Intake may be killed at any point and rerun; the result has
to be indistinguishable from one clean run, or the register would depend on operations luck.
"""

from __future__ import annotations

import shutil
from dataclasses import asdict
from pathlib import Path

import pytest

from npr_pipeline.home import Home
from npr_pipeline.intake import run as intake_run
from npr_pipeline.intake.reasons import Status
from npr_pipeline.intake.run import IntakeSummary
from npr_pipeline.store.lake import part_files
from npr_pipeline.store.ledger import current_submissions, load_ledger, load_records
from tests.intake_files import (
    Unit,
    fill_inbox,
    forget_records,
    ledger_bytes,
    make_year,
    mutate,
    run_intake,
    stored_tables,
    table_contents,
    tables_of,
)

LATE = "zz_late.xml"


@pytest.fixture(scope="module")
def units(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Unit]:
    """Three units, January-March 2026: lopenr 1, 3, 5 for ord and 2, 4, 6 for ide."""
    return make_year(tmp_path_factory.mktemp("synth-behaviour"), units=3, through=3, episodes=2)


@pytest.fixture(scope="module")
def big(units: dict[str, Unit]) -> Unit:
    """The unit with the most data (the one whose replacement matters most)."""
    return max(units.values(), key=lambda u: u.file("ord", 1).stat().st_size)


@pytest.fixture(scope="module")
def full_inbox(tmp_path_factory: pytest.TempPathFactory, units: dict[str, Unit], big: Unit) -> Path:
    """Every clean file, one rejected file, and the big unit's January ord arriving last."""
    inbox = tmp_path_factory.mktemp("full-inbox")
    late = big.file("ord", 1)
    files = [p for u in units.values() for p in u.files.values() if p != late]
    other = next(u for u in units.values() if u is not big)
    bad = mutate(other.file("ord", 2), ("58_0_1_ord", "57_0_1_ord"), ('"58.0.1"', '"57.0.1"'))
    return fill_inbox(
        inbox, files, **{f"{other.resh}_2026-01_zbad.xml": bad, LATE: late.read_bytes()}
    )


@pytest.fixture(scope="module")
def clean_run(tmp_path_factory: pytest.TempPathFactory, full_inbox: Path) -> Home:
    """HOME after one uninterrupted intake of the full inbox."""
    home = Home(root=tmp_path_factory.mktemp("clean") / "home")
    summary = run_intake(home, full_inbox)
    _check_full_summary(summary)
    _first_summaries[home.root] = summary
    return home


_first_summaries: dict[Path, IntakeSummary] = {}


def _check_full_summary(summary: IntakeSummary) -> None:
    """The full inbox's expected outcome, so comparisons are against a meaningful state."""
    by_file = {s.file: s for s in summary.submissions}
    bad = next(s for name, s in by_file.items() if name.endswith("_zbad.xml"))
    assert bad.status == Status.REJECTED
    assert [r.code for r in bad.reasons] == ["wrong_version"]
    late = by_file[LATE]
    assert late.status == Status.ACCEPTED
    assert [(r.code, r.severity) for r in late.reasons] == [("older_than_current", "info")]
    others = [s for name, s in by_file.items() if name not in (LATE, bad.file)]
    assert all(s.status == Status.ACCEPTED and not s.reasons for s in others), [
        (s.file, s.reasons) for s in others if s.reasons
    ]


def _records(home: Home) -> dict[str, dict[str, object]]:
    """Ledger records by submission id, without the receipt time (which differs per run)."""
    records = {}
    for record in load_records(home):
        doc = asdict(record)
        doc.pop("received")
        records[record.submission_id] = doc
    return records


def _relative_files(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()}


def test_rerunning_the_same_inbox_changes_nothing(full_inbox: Path, clean_run: Home) -> None:
    """The second run finds only duplicates and leaves every ledger and lake byte as it was."""
    home = clean_run
    first = _first_summaries[home.root]
    ledger, tables = ledger_bytes(home), stored_tables(home)
    feedback = _relative_files(home.feedback)
    second = run_intake(home, full_inbox)
    assert second.count(Status.DUPLICATE) == len(first.submissions)
    assert [s.file for s in second.submissions] == [s.file for s in first.submissions]
    assert [s.unit for s in second.submissions] == [s.unit for s in first.submissions]
    assert second.episodes == 0
    assert ledger_bytes(home) == ledger
    assert stored_tables(home) == tables
    assert _relative_files(home.feedback) == feedback


def test_killed_halfway_then_rerun_equals_one_clean_run(
    full_inbox: Path, clean_run: Home, tmp_path: Path
) -> None:
    """Run on the first half, lose the last two commits (lake written, ledger not), rerun all.

    That is the state a kill between publishing tables and writing the ledger record leaves;
    the rerun must process those files again and end exactly where one clean run ends.
    """
    names = sorted(p.name for p in full_inbox.iterdir())
    half = fill_inbox(tmp_path / "half", [full_inbox / n for n in names[: len(names) // 2]])
    home = Home(root=tmp_path / "home")
    first = run_intake(home, half)
    lost = first.submissions[-2:]
    assert any(s.status == Status.ACCEPTED for s in lost)
    forget_records(home, [s.submission_id for s in lost])
    for sub in lost:
        if sub.status == Status.ACCEPTED:
            assert tables_of(home, sub.submission_id), "the kill must leave lake files behind"
    rerun = run_intake(home, full_inbox)
    reprocessed = {s.file for s in rerun.submissions if s.status != Status.DUPLICATE}
    assert {s.file for s in lost} <= reprocessed
    assert _records(home) == _records(clean_run)
    assert stored_tables(home).keys() == stored_tables(clean_run).keys()
    ours, clean = table_contents(home), table_contents(clean_run)
    for path, table in clean.items():
        assert ours[path].equals(table), path
    assert not (home.root / "staging").exists() or not any((home.root / "staging").iterdir())


def _current(home: Home, unit: str, msg_type: str = "NPR_ORD") -> str:
    current = current_submissions(load_ledger(home))
    rows = current[(current["unit"] == unit) & (current["message_type"] == msg_type)]
    assert len(rows) == 1
    assert int(rows["year"].iloc[0]) == 2026
    return str(rows["submission_id"].iloc[0])


def _one(home: Home, inbox: Path, data: dict[str, bytes]) -> tuple[str, list[tuple[str, str]]]:
    """Send files in their own run; (submission id, [(code, severity)]) of the last one."""
    shutil.rmtree(inbox, ignore_errors=True)
    summary = run_intake(home, fill_inbox(inbox, **data))
    last = summary.submissions[-1]
    assert last.status == Status.ACCEPTED, last.reasons
    return last.submission_id, [(r.code, r.severity) for r in last.reasons]


def test_newest_lopenr_is_current_and_a_late_older_file_never_replaces_it(
    big: Unit, tmp_path: Path
) -> None:
    """January, then March (replaces it), then February late (accepted, not current)."""
    home = Home(root=tmp_path / "home")
    inbox = tmp_path / "inbox"
    jan, jan_reasons = _one(home, inbox, {"jan.xml": big.file("ord", 1).read_bytes()})
    assert jan_reasons == [] and _current(home, big.resh) == jan
    mar, mar_reasons = _one(home, inbox, {"mar.xml": big.file("ord", 3).read_bytes()})
    assert mar_reasons == [] and _current(home, big.resh) == mar
    feb, feb_reasons = _one(home, inbox, {"feb.xml": big.file("ord", 2).read_bytes()})
    assert feb_reasons == [("older_than_current", "info")]
    assert _current(home, big.resh) == mar
    ledger = load_ledger(home)
    versions = ledger[(ledger["unit"] == big.resh) & (ledger["message_type"] == "NPR_ORD")]
    assert sorted(versions["submission_id"]) == sorted([jan, mar, feb])
    assert set(versions["status"]) == {Status.ACCEPTED}
    assert sorted(versions["lopenr"].astype(int)) == [1, 3, 5]
    assert part_files(home, "episodes", [jan, mar, feb]).keys() == {jan, mar, feb}


def test_older_file_sorted_after_newer_in_one_run_is_not_current(big: Unit, tmp_path: Path) -> None:
    """Within one run files commit in name order: a later-named older lopenr stays behind."""
    home = Home(root=tmp_path / "home")
    inbox = fill_inbox(
        tmp_path / "inbox",
        **{
            "a_mar.xml": big.file("ord", 3).read_bytes(),
            "b_feb.xml": big.file("ord", 2).read_bytes(),
        },
    )
    summary = run_intake(home, inbox)
    mar, feb = summary.submissions
    assert (mar.status, feb.status) == (Status.ACCEPTED, Status.ACCEPTED)
    assert mar.reasons == []
    assert [(r.code, r.severity) for r in feb.reasons] == [("older_than_current", "info")]
    assert "5" in feb.reasons[0].message
    assert _current(home, big.resh) == mar.submission_id


def test_reused_lopenr_is_rejected_and_current_stays(big: Unit, tmp_path: Path) -> None:
    """A different file with a lopenr already accepted is refused; its tables are removed."""
    home = Home(root=tmp_path / "home")
    inbox = tmp_path / "inbox"
    original = big.file("ord", 2)
    first, _ = _one(home, inbox, {"feb.xml": original.read_bytes()})
    again = mutate(original, ('lokalident="', 'lokalident="resent-'))
    shutil.rmtree(inbox)
    (result,) = run_intake(home, fill_inbox(inbox, **{"feb-resent.xml": again})).submissions
    assert result.status == Status.REJECTED
    assert [r.code for r in result.reasons] == ["lopenr_reused"]
    assert tables_of(home, result.submission_id) == []
    assert _current(home, big.resh) == first
    assert len(load_ledger(home)) == 2


def test_current_is_per_unit_type_and_year(units: dict[str, Unit], clean_run: Home) -> None:
    """One current ord and one current ide per unit: the March files, lopenr 5 and 6."""
    current = current_submissions(load_ledger(clean_run))
    assert len(current) == 2 * len(units)
    for unit in units.values():
        for msg_type, lopenr in (("NPR_ORD", 5), ("NPR_IDE", 6)):
            row = current[(current["unit"] == unit.resh) & (current["message_type"] == msg_type)]
            assert row["lopenr"].tolist() == [lopenr]
            assert row["period_to"].tolist() == ["2026-03-31"]


def test_an_inbox_longer_than_one_pool_generation_completes(
    full_inbox: Path, clean_run: Home, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Workers are replaced every few files without hanging, and the result is unchanged.

    With one file per worker per pool the 20 files need ten pools; ``max_tasks_per_child``
    hung exactly here (python/cpython#115634), so ``run_intake``'s timeout is the assertion.
    """
    monkeypatch.setattr(intake_run, "WORKER_FILES", 1)
    home = Home(root=tmp_path / "home")
    summary = run_intake(home, full_inbox, workers=2)
    _check_full_summary(summary)
    assert _records(home) == _records(clean_run)
    assert table_contents(home) == table_contents(clean_run)
