"""The forløpsmelding's start deadline (seed 000: every obliged unit has started registering and
reporting by 16 May 2026) in ``npr status``: a real HOME and registry, a real trial file through
intake, and the command's text and ``--json`` judged on days around the deadline. The dates are
the type folder's calendar; the production gate is not made stricter by it."""

from __future__ import annotations

import dataclasses
import json
from datetime import UTC, date, datetime

import pytest
from typer.testing import CliRunner

from npr_pipeline.cli import app
from npr_pipeline.home import Home
from npr_pipeline.messages import by_message_type
from npr_pipeline.registry import current_registry, lists_types
from npr_pipeline.reports import not_started
from npr_pipeline.store.ledger import load_ledger
from npr_pipeline.synth.pathways import write_pathways
from tests.test_intake_reports import PSYCH_UNIT, _home, _intake, _outcome, _unit_year

IN_MARCH = datetime(2026, 3, 10, 9, 0, tzinfo=UTC)
DEADLINE = "2026-05-16"


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Home:
    """A HOME whose psychiatric test unit sent one forløpsmelding, in the trial (March)."""
    root = tmp_path_factory.mktemp("start_deadline")
    home = _home(root)
    year = _unit_year(PSYCH_UNIT, "mental_health")
    forlop = write_pathways(root / "files", year, (date(2026, 1, 1), date(2026, 2, 28)), 1, 5)
    assert forlop is not None
    summary = _intake(home, root / "inbox", [forlop], at=IN_MARCH)
    assert _outcome(summary) == {forlop.name: ("test", ["trial_period"])}  # never production
    return home


def _status(home: Home, period: str, today: str, *json: str) -> str:
    result = CliRunner().invoke(
        app, ["status", "--period", period, "--today", today, *json],
        env={"NPR_HOME": str(home.root)},
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    return result.output


def _reports(home: Home, period: str, today: str) -> dict[str, dict]:
    doc = json.loads(_status(home, period, today, "--json"))
    return {r["message_type"]: r for r in doc["reports"]}


def _silent_units(home: Home) -> set[str]:
    """The registry's forløp units (all open since before 2026) but the one that sent."""
    registry = current_registry(home)
    return set(registry.loc[lists_types(registry, ("NPR_FORLOP",)), "reshID"]) - {PSYCH_UNIT}


def test_the_deadline_is_the_type_folders() -> None:
    forlop = by_message_type("NPR_FORLOP")
    assert forlop is not None and forlop.calendar is not None
    assert forlop.calendar.start_deadline.isoformat() == DEADLINE


@pytest.mark.parametrize("today", ["2026-03-31", DEADLINE])
def test_nobody_is_named_before_the_deadline_has_passed(home: Home, today: str) -> None:
    forlop = _reports(home, "2026-04", today)["NPR_FORLOP"]
    assert (forlop["start_deadline"], forlop["not_started"]) == (DEADLINE, [])
    assert "not started" not in _status(home, "2026-04", today)


def test_after_the_deadline_the_silent_units_are_named_and_the_trial_sender_is_not(
    home: Home,
) -> None:
    reports = _reports(home, "2026-04", "2026-05-17")
    named = reports["NPR_FORLOP"]["not_started"]
    assert {u["reshID"] for u in named} == _silent_units(home)
    assert len(named) > 100 and PSYCH_UNIT not in {u["reshID"] for u in named}
    assert {u["start_deadline"] for u in named} == {DEADLINE} and all(u["name"] for u in named)
    assert (reports["NPR_KPP"]["start_deadline"], reports["NPR_KPP"]["not_started"]) == (None, [])
    text = _status(home, "2026-04", "2026-05-17")
    assert f"NPR_FORLOP: not started by the start deadline {DEADLINE}" in text
    assert named[0]["reshID"] in text


def test_the_gate_is_no_stricter_before_june(home: Home) -> None:
    """Periods before ordinary reporting oblige nobody, deadline or not; from June the obliged
    units are expected as before, the silent ones among the missing."""
    april = _reports(home, "2026-04", "2026-05-17")["NPR_FORLOP"]
    assert (april["phase"], april["expected"], april["missing"]) == ("trial", 0, [])
    june = _reports(home, "2026-06", "2026-07-02")["NPR_FORLOP"]
    assert june["phase"] == "ordinary" and june["delivered"] == 0
    assert _silent_units(home) <= {u["reshID"] for u in june["missing"]}


def test_a_bad_day_is_refused(home: Home) -> None:
    result = CliRunner().invoke(
        app, ["status", "--period", "2026-04", "--today", "16.05.2026"],
        env={"NPR_HOME": str(home.root)},
    )  # fmt: skip
    assert result.exit_code != 0 and "--today" in result.output


def test_a_unit_registered_on_the_deadline_day_only_is_named(home: Home) -> None:
    """One closed before the deadline and one opened after it were never due to start by it;
    before the deadline nobody is named, whatever the ledger holds."""
    registry = current_registry(home)
    silent = sorted(_silent_units(home))
    closed, opened = silent[0], silent[1]
    registry.loc[registry["reshID"] == closed, "valid_to"] = "2026-04-30"
    registry.loc[registry["reshID"] == opened, "valid_from"] = "2026-08-01"
    forlop = by_message_type("NPR_FORLOP")
    assert forlop is not None
    ledger = load_ledger(home)
    named = {u["reshID"] for u in not_started(registry, ledger, forlop, date(2026, 9, 1))}
    assert named == set(silent) - {closed, opened}
    assert not_started(registry, ledger, forlop, date(2026, 3, 9)) == []


def test_a_file_received_after_the_day_judged_does_not_count_yet(home: Home) -> None:
    """Judged on 9 March, the file of 10 March had not arrived: the sender is not started."""
    registry, ledger = current_registry(home), load_ledger(home)
    forlop = by_message_type("NPR_FORLOP")
    assert forlop is not None and forlop.calendar is not None
    moved = dataclasses.replace(forlop.calendar, start_deadline=date(2026, 3, 1))
    early = dataclasses.replace(forlop, calendar=moved)  # a deadline before the file arrived
    assert PSYCH_UNIT in {
        u["reshID"] for u in not_started(registry, ledger, early, date(2026, 3, 9))
    }
    assert PSYCH_UNIT not in {
        u["reshID"] for u in not_started(registry, ledger, early, date(2026, 3, 10))
    }
