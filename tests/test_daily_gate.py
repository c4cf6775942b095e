"""The completeness gate for daily units (issue 13): a daily unit has delivered a period when it
has closed it and the state as known at the closing's batch matched its control totals; the gate
names those that have not closed and those whose totals differ, with the difference, in
``npr status`` and ``npr run`` (exit 3), and a correction after the close does not reopen it.

Real daily XML (the synth's renderer) through the real reader into real Delta event tables and
committed batches (``tests.daily_events``); the registry puts the unit on the daily route."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import duckdb
import pytest
from typer.testing import CliRunner

from npr_pipeline.cli import EXIT_REFUSED, app
from npr_pipeline.home import Home
from npr_pipeline.intake.run import intake_directory
from npr_pipeline.periods import Period
from npr_pipeline.production.daily_gate import daily_gate
from npr_pipeline.production.gate import Override, judge_period
from npr_pipeline.production.snapshot import build_snapshot, snapshot_path
from npr_pipeline.registry import current_registry
from npr_pipeline.store.ledger import load_ledger
from npr_pipeline.synth.run import SynthOptions, run_synth
from tests.daily_events import UNIT, avslutning, henvisning, ident, kontakt
from tests.daily_units import Unit, daily_home
from tests.intake_files import prepare_test_home

MARCH = ("2026-03-01", "2026-03-31")
AT, LATER = "2026-03-20T10:00:00", "2026-04-02T10:00:00"
runner = CliRunner()


@pytest.fixture
def home(tmp_path: Path) -> Home:
    return daily_home(tmp_path)


@pytest.fixture
def unit(home: Home, tmp_path: Path) -> Unit:
    return Unit(home, tmp_path / "in")


def _march(unit: Unit, totals: dict[str, int]) -> int:
    """Two contacts and a waiting referral in March, their identities, and the closing."""
    return unit.send(
        ("kontakt", [kontakt("K-1", "N", AT, innDatoTid="2026-03-02T08:00:00"),
                     kontakt("K-2", "N", AT, patient="P-2", innDatoTid="2026-03-05T08:00:00")]),
        ("henvisning", [henvisning("H-1", "N", AT, patient="P-3", mottattDato="2026-02-10")]),
        ("ident", [ident(f"P-{n}", "N", AT) for n in (1, 2, 3)]),
        ("avslutning", [avslutning("A-3", "N", "2026-03-31T23:59:00", MARCH, totals)]),
    )  # fmt: skip


def _status(home: Home) -> dict:
    result = runner.invoke(
        app, ["--home", str(home.root), "status", "--period", "2026-03", "--json"]
    )
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


def _missing(home: Home) -> list[dict]:
    steps = _status(home)["steps"]
    assert all(s["missing"] == steps[0]["missing"] for s in steps)
    return steps[0]["missing"]


def test_closed_and_matching_is_delivered(home: Home, unit: Unit) -> None:
    _march(unit, {"1": 2, "2": 1, "3": 3})
    steps = _status(home)["steps"]
    assert {(s["gate"], s["expected"], s["delivered"]) for s in steps} == {("open", 1, 1)}


def test_not_closed_is_missing_and_run_refuses(home: Home, unit: Unit) -> None:
    unit.send(("kontakt", [kontakt("K-1", "N", AT, innDatoTid="2026-03-02T08:00:00")]))
    missing = _missing(home)
    assert [(m["reshID"], m["name"], m["reason"]) for m in missing] == [
        (UNIT, "Helse Eksempel HF", "not_closed")
    ]
    result = runner.invoke(app, ["--home", str(home.root), "run", "--period", "2026-03"])
    assert result.exit_code == EXIT_REFUSED, result.output
    assert UNIT in result.output


def test_totals_that_differ_are_named_with_the_difference(home: Home, unit: Unit) -> None:
    _march(unit, {"1": 5, "2": 1})  # five contacts claimed, two in the state; identities left out
    (missing,) = _missing(home)
    assert missing["reason"] == "totals_differ"
    assert missing["difference"] == {"A-3": {"1": 3, "3": -3}}
    text = runner.invoke(app, ["--home", str(home.root), "status", "--period", "2026-03"]).output
    assert "A-3 postart 1: +3" in text.replace("\n", " ") or "postart 1: +3" in text
    registry = current_registry(home)
    verdict = judge_period(registry, load_ledger(home), Period.parse("2026-03"), date.today(),
                           Override.of([UNIT], "closing under investigation", "test"),
                           daily_gate(home, registry, Period.parse("2026-03")))  # fmt: skip
    assert not verdict.closed() and verdict.left_out == {UNIT: "excused"}
    assert verdict.inputs.daily.units == ()


def test_a_correction_after_the_close_does_not_reopen_the_gate(home: Home, unit: Unit) -> None:
    closed_at = _march(unit, {"1": 2, "2": 1, "3": 3})
    # a third March contact after the close: today's state would no longer match the totals
    later = unit.send(("kontakt", [kontakt("K-3", "N", LATER, innDatoTid="2026-03-09T08:00:00")]))
    assert later > closed_at
    assert _missing(home) == []
    gate = daily_gate(home, current_registry(home), Period.parse("2026-03"))
    assert gate.input.batch == later and gate.delivered == {UNIT}


def test_an_error_finding_excludes_a_daily_record_as_a_monthly_one(home: Home, unit: Unit) -> None:
    """The catalogue runs over the daily state when the snapshot is built: a contact that ends
    before it starts (``episode_dates_in_order``, an error) is left out, its neighbour is not."""
    dates = {"K-1": ("2026-03-02T08:00:00", "2026-03-02T09:00:00"),
             "K-2": ("2026-03-05T08:00:00", "2026-03-04T08:00:00")}  # fmt: skip
    unit.send(
        ("kontakt", [kontakt(k, "N", AT, patient=f"P-{k[-1]}", innDatoTid=i, utDatoTid=u)
                     for k, (i, u) in dates.items()]),
        ("ident", [ident(f"P-{n}", "N", AT) for n in (1, 2)]),
        ("avslutning", [avslutning("A-3", "N", "2026-03-31T23:59:00", MARCH,
                                   {"1": 2, "3": 2})]),
    )  # fmt: skip
    build_snapshot(home, Period.parse("2026-03"))
    con = duckdb.connect(str(snapshot_path(home, Period.parse("2026-03"))), read_only=True)
    try:
        raw = con.execute('SELECT "episodeID" FROM raw_episodes ORDER BY 1').fetchall()
        kept = con.execute('SELECT "episodeID" FROM episodes ORDER BY 1').fetchall()
        found = con.execute(
            "SELECT unit, record_id, submission_id FROM excluded "
            "WHERE check_id = 'episode_dates_in_order'"
        ).fetchall()
    finally:
        con.close()
    assert raw == [("K-1",), ("K-2",)]
    assert found == [(UNIT, "K-2", f"daily-{UNIT}-2026")]
    assert ("K-2",) not in kept


def test_one_intake_of_a_whole_daily_inbox_checks_each_closing_at_its_place(
    tmp_path: Path,
) -> None:
    """A catch-up: every daily file through February in one ``npr intake``, so a unit's January
    closing and its February files come in one run. Each closing is checked against the state
    as it stood when the closing came, not with the files that follow it: intake starts a new
    batch after a unit's closing, and every January closing matches."""
    synth = tmp_path / "synth"
    run_synth(SynthOptions(out=synth, year=2026, through=2, units=2, seed=3,
                           episodes_per_unit_month=10, route="daily"))  # fmt: skip
    home = prepare_test_home(Home(root=tmp_path / "home"), synth / "registry.csv")
    done = intake_directory(home, synth / "inbox").as_json()
    assert done["accepted"] > 0 and done["rejected"] == done["failed"] == 0, done
    gate = daily_gate(home, current_registry(home), Period.parse("2026-01"))
    assert gate.input.units and gate.problems == {}
    assert gate.delivered == set(gate.input.units)
