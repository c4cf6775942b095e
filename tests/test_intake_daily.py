"""The daily route through ``intake_directory`` (issue 13): real daily files written by the
synth's renderer, a real registry with a ``route`` column, real Delta tables and ledger, the
state read back through the fold, the XPR_VAL/XPR_ERR answers read back from disk."""

from __future__ import annotations

import json
import re
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import duckdb
import pandas as pd
from typer.testing import CliRunner

from npr_pipeline import reference
from npr_pipeline.cli import app
from npr_pipeline.feedback.reports import read_report_findings
from npr_pipeline.home import Home
from npr_pipeline.intake.run import IntakeSummary
from npr_pipeline.store.batches import committed_batch
from npr_pipeline.store.consolidated import daily_closings, register_daily_state
from npr_pipeline.store.events import events_dataset
from npr_pipeline.store.ledger import load_records
from npr_pipeline.synth.daily import Element
from tests.daily_events import avslutning, henvisning, ident, kontakt, unit_info, write_file
from tests.intake_files import fill_inbox, prepare_test_home, run_intake

DAILY = unit_info("9701851", "Rikshospitalet", "949221628", "414833")
MONTHLY = unit_info("9086580", "Ullevål", "994004549", "305944")
T1, T2, T3, T4, T5 = (f"2026-03-0{d}T10:00:00" for d in (1, 2, 3, 4, 5))
TIMEOUT = 300.0


def _home(root: Path, daily: set[str]) -> Home:
    """A test HOME whose registry puts these units on the daily route."""
    frame = pd.read_csv(
        reference.reference_dir() / "units.csv", dtype=str, comment="#", keep_default_na=False
    )
    frame["route"] = ["daily" if r in daily else "" for r in frame["reshID"]]
    root.mkdir(parents=True, exist_ok=True)
    frame.to_csv(root / "registry.csv", index=False)
    return prepare_test_home(Home(root=root / "home"), root / "registry.csv")


class Files:
    """Daily files of one unit, numbered in the order the inbox should list them."""

    def __init__(self, folder: Path, sender=DAILY) -> None:
        self.folder, self.sender, self.lopenr, self.n = folder, sender, {}, 0

    def __call__(self, kind: str, *records: Element, lopenr: int | None = None) -> Path:
        self.lopenr[kind] = lopenr or self.lopenr.get(kind, 0) + 1
        written = write_file(self.folder / "w", kind, self.lopenr[kind], list(records), self.sender)
        self.n += 1
        return written.rename(self.folder / f"{self.n:02d}_{written.name}")


def _intake(home: Home, inbox: Path, *files: Path) -> IntakeSummary:
    shutil.rmtree(inbox, ignore_errors=True)
    return run_intake(home, fill_inbox(inbox, files), timeout=TIMEOUT)


def _by_file(summary: IntakeSummary) -> dict[str, tuple[str, list[str]]]:
    return {s.file: (s.status, [r.code for r in s.reasons]) for s in summary.submissions}


def _state(home: Home, sql: str) -> list[tuple]:
    con = duckdb.connect()
    register_daily_state(con, home, 2026, committed_batch(home))
    return con.execute(sql).fetchall()


def _report_codes(home: Home, summary: IntakeSummary, file: Path) -> list[str]:
    sid = next(s.submission_id for s in summary.submissions if s.file == file.name)
    return [f["rule"] for f in read_report_findings(home.feedback / sid)]


def test_every_daily_type_is_accepted_and_reaches_the_state(tmp_path: Path) -> None:
    home = _home(tmp_path, {DAILY.resh})
    new = Files(tmp_path / "files")
    files = [
        new("kontakt", kontakt("K-1", "N", T1, diagnoses=[(1, "M161")], fagomrade="050",
                               innDatoTid="2026-03-01T08:00:00", henvisningsperiodeID="H-1")),
        new("henvisning", henvisning("H-1", "N", T1, mottattDato="2026-02-01")),
        new("ident", ident("P-1", "N", T1)),
        new("avslutning", avslutning("A-1", "N", T2, ("2026-03-01", "2026-03-31"),
                                     {"1": 1, "2": 1, "3": 1})),
    ]  # fmt: skip
    summary = _intake(home, tmp_path / "inbox", *files)
    assert _by_file(summary) == {f.name: ("accepted", []) for f in files}
    records = {r.file: r for r in load_records(home)}
    assert {r.message_type for r in records.values()} == {
        "NPR_KONTAKT", "NPR_HENVISNING", "NPR_IDENT", "NPR_AVSLUTNING"
    }  # fmt: skip
    assert {(r.unit, r.year, r.lopenr, r.version) for r in records.values()} == {
        (DAILY.resh, 2026, 1, "58.0.1")
    }
    assert committed_batch(home) == 1
    k = records[files[0].name].submission_id
    assert _state(home, "SELECT submission_id, unit, episodeID, fagomrade FROM daily_episodes") == [
        (k, DAILY.resh, "K-1", "050")
    ]
    assert _state(home, "SELECT episodeID, kodeNr FROM daily_diagnoses") == [("K-1", "M161")]
    assert _state(home, "SELECT henvisningsperiodeID FROM daily_referrals") == [("H-1",)]
    assert _state(home, "SELECT pid FROM daily_idents") == [("P-1",)]
    closings = daily_closings(duckdb.connect(), home, 2026, 1)
    assert closings.column("antall").to_pylist() == [1, 1, 1]
    for record in records.values():
        folder = home.feedback / record.submission_id
        assert (folder / "XPR_VAL.xml").is_file()
        assert not (folder / "XPR_ERR.xml").exists()


def test_statuses_order_duplicates_and_bad_events(tmp_path: Path) -> None:
    home = _home(tmp_path, {DAILY.resh})
    new = Files(tmp_path / "files")
    made = new("kontakt", kontakt("K-1", "N", T1, diagnoses=[(1, "M161")], fagomrade="050"),
               kontakt("K-2", "N", T1))  # fmt: skip
    fixed = new("kontakt", kontakt("K-1", "M", T3, diagnoses=[(1, "I10")], fagomrade="110"))
    first = _intake(home, tmp_path / "inbox", made, fixed)
    assert [s.status for s in first.submissions] == ["accepted", "accepted"]
    stale = new("kontakt", kontakt("K-1", "M", T2, fagomrade="999"))  # older than the M seen
    mixed = new(
        "kontakt",
        kontakt("K-1", "T", T4, diagnoses=[(2, "E119")]),
        kontakt("K-2", "C", T2),
        kontakt("K-9", "M", T2),  # never created
        kontakt("K-1", "N", T5),
    )  # the key exists
    late = new("kontakt", kontakt("K-2", "T", T3))  # after the cancel
    copy = new("kontakt", kontakt("K-1", "N", T1, diagnoses=[(1, "M161")], fagomrade="050"))
    resent = tmp_path / "files" / f"99_{made.name}"
    shutil.copyfile(made, resent)  # the same bytes again
    second = _intake(home, tmp_path / "inbox", stale, mixed, late, copy, resent)
    assert _by_file(second) == {
        stale.name: ("accepted", []),
        mixed.name: ("accepted", ["duplicate_new", "unknown_key"]),
        late.name: ("accepted", ["after_cancel"]),
        copy.name: ("accepted", []),  # an identical event counts once, no finding
        resent.name: ("duplicate", ["duplicate"]),
    }
    assert _report_codes(home, second, mixed) == ["unknown_key", "duplicate_new"]  # file order
    assert _report_codes(home, second, late) == ["after_cancel"]
    assert _report_codes(home, second, stale) == []
    # the answers are XML only; `npr feedback` renders a daily file's display files on request
    assert [p for p in home.feedback.rglob("*") if p.suffix in {".html", ".csv"}] == []
    args = ["--home", str(home.root), "feedback", mixed.name, "--json"]
    shown = json.loads(CliRunner().invoke(app, args).stdout)
    page = Path(shown["reports"]["XPR_ERR"]["html"]).read_text(encoding="utf-8")
    assert "duplicate_new" in page and "unknown_key" in page
    table = Path(shown["reports"]["XPR_ERR"]["csv"]).read_text(encoding="utf-8-sig")
    assert [line.split(",")[2] for line in table.splitlines()[1:]] == [
        "unknown_key", "duplicate_new"
    ]  # fmt: skip
    assert Path(shown["reports"]["XPR_VAL"]["html"]).is_file()
    records = {r.file: r for r in load_records(home)}
    assert _state(home, "SELECT episodeID, fagomrade, submission_id FROM daily_episodes") == [
        ("K-1", "110", records[mixed.name].submission_id)
    ]
    assert _state(home, "SELECT tilstNr, kodeNr FROM daily_diagnoses ORDER BY 1") == [
        (1, "I10"), (2, "E119")
    ]  # fmt: skip
    assert committed_batch(home) == 2


def test_wrong_route_both_ways_and_the_monthly_route_beside(
    tmp_path: Path, small_year: Path
) -> None:
    ord_files = sorted((small_year / "inbox").glob("*_2026-01_ord.xml"))
    daily_ord, monthly_ord = ord_files[0], ord_files[1]
    home = _home(tmp_path, {DAILY.resh, daily_ord.name.split("_")[0]})
    from_monthly = Files(tmp_path / "m", MONTHLY)("kontakt", kontakt("K-1", "N", T1))
    from_daily = Files(tmp_path / "d")("kontakt", kontakt("K-1", "N", T1))
    summary = _intake(home, tmp_path / "inbox", daily_ord, monthly_ord, from_monthly, from_daily)
    outcome = _by_file(summary)
    assert outcome[daily_ord.name] == ("rejected", ["wrong_route"])
    assert outcome[from_monthly.name] == ("rejected", ["wrong_route"])
    assert outcome[monthly_ord.name][0] == "accepted"
    assert outcome[from_daily.name] == ("accepted", [])
    assert _state(home, "SELECT unit FROM daily_episodes") == [(DAILY.resh,)]


def test_rejected_daily_files_leave_no_events(tmp_path: Path) -> None:
    home = _home(tmp_path, {DAILY.resh})
    new = Files(tmp_path / "files")
    good = new("kontakt", kontakt("K-1", "N", T1))
    reused = new("kontakt", kontakt("K-2", "N", T1), lopenr=1)
    broken = new("kontakt", kontakt("K-3", "X", T1))  # not a hendelsesstatus
    summary = _intake(home, tmp_path / "inbox", good, reused, broken)
    outcome = _by_file(summary)
    assert outcome[good.name] == ("accepted", [])
    assert outcome[reused.name] == ("rejected", ["lopenr_reused"])
    assert outcome[broken.name][0] == "rejected"
    assert set(outcome[broken.name][1]) == {"schema_error"}
    assert events_dataset(home, "daily_contacts").to_table().column("kontaktID").to_pylist() == [
        "K-1"
    ]
    for sub in summary.submissions:
        assert (home.feedback / sub.submission_id / "XPR_VAL.xml").is_file()


# a kill -9 of intake after the batch's Delta append, before its ledger commit
_KILL_AFTER_APPEND = """
import os, signal, sys
from pathlib import Path
import npr_pipeline.intake.run as run
from npr_pipeline.home import Home
real = run.write_records
def dying(home, records, failed=(), batch=None):
    if batch is not None:
        os.kill(os.getpid(), signal.SIGKILL)
    return real(home, records, failed, batch)
run.write_records = dying
run.intake_directory(Home(root=Path(sys.argv[1])), Path(sys.argv[2]), workers=1)
"""


def _outcome(home: Home) -> tuple:
    records = sorted((r.file, r.status, r.reasons) for r in load_records(home))
    findings = {
        r.file: [f["rule"] for f in read_report_findings(home.feedback / r.submission_id)]
        for r in load_records(home)
    }
    con = duckdb.connect()
    register_daily_state(con, home, 2026, committed_batch(home))
    state = con.execute("SELECT * EXCLUDE (submission_id) FROM daily_episodes").fetchall()
    diagnoses = con.execute("SELECT * EXCLUDE (submission_id) FROM daily_diagnoses").fetchall()
    return records, findings, sorted(state), sorted(diagnoses)


def test_a_kill_between_the_delta_append_and_the_ledger_commit(tmp_path: Path) -> None:
    new = Files(tmp_path / "files")
    files = [
        new("kontakt", kontakt("K-1", "N", T1, diagnoses=[(1, "M161")])),
        new("kontakt", kontakt("K-1", "T", T2, diagnoses=[(2, "I10")]), kontakt("K-5", "C", T2)),
        new("ident", ident("P-1", "N", T1)),
    ]
    inbox = fill_inbox(tmp_path / "inbox", files)
    clean = _home(tmp_path / "clean", {DAILY.resh})
    run_intake(clean, inbox, timeout=TIMEOUT)
    killed = _home(tmp_path / "killed", {DAILY.resh})
    died = subprocess.run(
        [sys.executable, "-c", _KILL_AFTER_APPEND, str(killed.root), str(inbox)],
        cwd=Path(__file__).resolve().parents[1],
        timeout=TIMEOUT,
    )
    assert died.returncode == -signal.SIGKILL
    assert events_dataset(killed, "daily_contacts").to_table().num_rows == 3  # stored, invisible
    assert (committed_batch(killed), load_records(killed)) == (0, [])
    assert _state(killed, "SELECT count(*) FROM daily_episodes") == [(0,)]
    run_intake(killed, inbox, timeout=TIMEOUT)
    assert committed_batch(killed) == 2
    assert _outcome(killed) == _outcome(clean)


def test_a_daily_file_without_a_technical_contact_is_accepted_with_a_warning(
    tmp_path: Path,
) -> None:
    """No type-1 Kontaktperson, or one whose e-mail is no address: accepted (the answers go by
    EDI only) with ``no_technical_contact`` in the reasons and in XPR_VAL; with one, no warning."""
    home = _home(tmp_path, {DAILY.resh})
    new = Files(tmp_path / "files")
    fine = new("kontakt", kontakt("K-1", "N", T1))
    none = new("kontakt", kontakt("K-2", "N", T1))
    bad = new("kontakt", kontakt("K-3", "N", T1))
    text = none.read_text(encoding="utf-8")
    contact = re.search(r"<Kontaktperson [^>]*/>\n", text)
    assert contact is not None
    none.write_text(text.replace(contact[0], ""), encoding="utf-8")
    bad.write_text(
        re.sub(r'epost="[^"]*"', 'epost="kontakt at example.no"', bad.read_text("utf-8")), "utf-8"
    )
    summary = _intake(home, tmp_path / "inbox", fine, none, bad)
    assert _by_file(summary) == {
        fine.name: ("accepted", []),
        none.name: ("accepted", ["no_technical_contact"]),
        bad.name: ("accepted", ["no_technical_contact"]),
    }
    sid = next(s.submission_id for s in summary.submissions if s.file == none.name)
    assert "no_technical_contact" in (home.feedback / sid / "XPR_VAL.xml").read_text("utf-8")
