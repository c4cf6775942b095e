"""Production reads each unit's delivery as intake's content checks paired it.

An ord's ide is the newest accepted ide of the same unit and data end; a unit's current
delivery for a period is its newest ord with such an ide whose data reach the period's end.
Before session 14 production took the newest ord and the newest ide on their own: a unit that
sent next month's ord before its ide (or the ide first) had the snapshot's checks find the
pair's errors unexcluded, and the whole country's period stopped.
"""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import duckdb
import pandas as pd
import pytest

from npr_pipeline.home import Home
from npr_pipeline.periods import Period
from npr_pipeline.production.input_checks import check_period
from npr_pipeline.production.inputs import InputFileError
from npr_pipeline.production.snapshot import build_snapshot, snapshot_path
from npr_pipeline.store.lake import current_deliveries, current_for_period
from npr_pipeline.store.ledger import load_ledger
from tests.handbuilt import (
    ALERIS,
    HAUKELAND,
    Episode,
    Patient,
    Submission,
    at,
    fnr,
    new_home,
    receive,
)

APRIL = Period.parse("2026-04")


def _row(unit: str, kind: str, lopenr: int, period_to: str, status: str = "accepted") -> dict:
    return {
        "unit": unit,
        "message_type": kind,
        "submission_id": f"{unit}-{kind[-3:].lower()}-{lopenr}",
        "lopenr": lopenr,
        "period_to": period_to,
        "episodes": 1,
        "status": status,
        "extracted": period_to,
        "year": 2026,
    }


def _chosen(rows: list[dict], period: Period = APRIL) -> dict[tuple[str, str], str]:
    chosen = current_deliveries(pd.DataFrame(rows), period)
    return {
        (u, k): s
        for u, k, s in zip(
            chosen["unit"], chosen["message_type"], chosen["submission_id"], strict=True
        )
    }


def test_the_newest_complete_delivery_that_covers_is_current() -> None:
    """Next month's ord before its ide (A), its ide before its ord (B), a corrected ord
    without a new ide (C), a half delivery only (D), an ide only (E), and the newest halves
    of two different months that both reach the period's end but are no pair (F)."""
    apr, may, jun = "2026-04-30", "2026-05-31", "2026-06-30"
    rows = [
        _row("A", "NPR_ORD", 4, apr), _row("A", "NPR_IDE", 4, apr), _row("A", "NPR_ORD", 5, may),
        _row("B", "NPR_ORD", 4, apr), _row("B", "NPR_IDE", 4, apr), _row("B", "NPR_IDE", 5, may),
        _row("C", "NPR_ORD", 4, apr), _row("C", "NPR_IDE", 4, apr), _row("C", "NPR_ORD", 5, apr),
        _row("C", "NPR_ORD", 6, may, status="rejected"),
        _row("D", "NPR_ORD", 4, apr),
        _row("E", "NPR_IDE", 4, apr),
        _row("F", "NPR_ORD", 3, "2026-03-31"), _row("F", "NPR_IDE", 3, "2026-03-31"),
        _row("F", "NPR_ORD", 5, may), _row("F", "NPR_IDE", 6, jun),
    ]  # fmt: skip
    assert _chosen(rows) == {
        ("A", "NPR_ORD"): "A-ord-4", ("A", "NPR_IDE"): "A-ide-4",
        ("B", "NPR_ORD"): "B-ord-4", ("B", "NPR_IDE"): "B-ide-4",
        ("C", "NPR_ORD"): "C-ord-5", ("C", "NPR_IDE"): "C-ide-4",
        ("D", "NPR_ORD"): "D-ord-4",
        ("E", "NPR_IDE"): "E-ide-4",
        ("F", "NPR_ORD"): "F-ord-5",
    }  # fmt: skip
    # May: A's and F's newest ords have no ide of their own yet (their units are missing)
    may_chosen = _chosen(rows, Period.parse("2026-05"))
    assert may_chosen[("A", "NPR_ORD")] == "A-ord-5" and ("A", "NPR_IDE") not in may_chosen
    assert may_chosen[("B", "NPR_ORD")] == "B-ord-4" and may_chosen[("B", "NPR_IDE")] == "B-ide-4"


def test_a_period_without_deliveries_and_other_types_keep_their_newest() -> None:
    rows = [_row("K", "NPR_KPP", 1, "2026-04-30"), _row("K", "NPR_KPP", 2, "2026-05-31")]
    current = current_for_period(pd.DataFrame(rows), APRIL)
    assert current["submission_id"].tolist() == ["K-kpp-2"]
    assert current["covers"].tolist() == [True]


def _patients(*numbers: int) -> list[Patient]:
    return [
        Patient(
            f"P{n}",
            fnr(date(1960, 1, n)),
            episodes=(Episode(f"E{n}", at(f"2026-{n:02d}-02", "09:00"), at(f"2026-{n:02d}-02")),),
        )
        for n in numbers
    ]


def _send(home: Home, inbox: Path, sub: Submission, *messages: str) -> None:
    """Only the named halves of ``sub`` (all must be accepted)."""
    inbox.mkdir(parents=True)
    for msg in messages:
        (inbox / sub.name(msg)).write_bytes(sub.file(msg))
    receive(home, inbox)


@pytest.fixture(scope="module")
def half_sent(tmp_path_factory: pytest.TempPathFactory) -> Home:
    """Both units deliver April in full; then Haukeland sends May's ord (a new patient, not in
    April's ide) and Aleris May's ide (a new patient, not in April's ord), each without the
    other half."""
    root = tmp_path_factory.mktemp("pairs")
    home = new_home(root, [HAUKELAND, ALERIS])
    receive(
        home,
        root / "april",
        Submission(HAUKELAND, 4, 1, _patients(3, 4)),
        Submission(ALERIS, 4, 1, _patients(3, 4)),
    )
    _send(home, root / "may-ord", Submission(HAUKELAND, 5, 2, _patients(3, 4, 5)), "ord")
    _send(home, root / "may-ide", Submission(ALERIS, 5, 2, _patients(3, 4, 5)), "ide")
    return home


def test_a_half_sent_next_month_leaves_the_period_on_its_checked_pairs(half_sent: Home) -> None:
    checks = check_period(half_sent, APRIL, "run-pairs", max_share=1.0)
    assert checks.passed, checks.failed_errors
    ledger = load_ledger(half_sent)
    april = set(ledger.loc[ledger["period_to"] == "2026-04-30", "submission_id"])
    with duckdb.connect(str(snapshot_path(half_sent, APRIL)), read_only=True) as con:
        read = {s for (s,) in con.execute("SELECT submission_id FROM input_submissions").fetchall()}
    assert read == april and len(april) == 4


def test_a_delivery_checked_with_another_ide_is_refused_by_name(
    half_sent: Home, tmp_path: Path
) -> None:
    """Fail closed: a marker naming another ide than production reads (checks not run since
    the ledger changed) stops the period with the file and what to run. (A build from the
    same submissions as the previous one carries its rows over without reading markers: the
    snapshot is removed, as it may be at any time.)"""
    snapshot_path(half_sent, APRIL).unlink(missing_ok=True)
    ledger = load_ledger(half_sent)
    ord_sid = ledger.loc[
        (ledger["unit"] == HAUKELAND.resh)
        & (ledger["message_type"] == "NPR_ORD")
        & (ledger["period_to"] == "2026-04-30"),
        "submission_id",
    ].item()
    (marker,) = half_sent.root.glob(f"quality/year=2026/unit={HAUKELAND.resh}/{ord_sid}*.json")
    saved = marker.read_bytes()
    try:
        marker.write_text(json.dumps({**json.loads(saved), "ide_sid": "0123456789abcdef"}))
        with pytest.raises(InputFileError, match="checked with ide 0123456789abcdef.*npr intake"):
            build_snapshot(half_sent, APRIL)
    finally:
        marker.write_bytes(saved)
