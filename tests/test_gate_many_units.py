"""The completeness gate over a few thousand registry rows: the answer, not the time.

The registry is 3,000 privately funded providers (``benchmarks.gate_bench.private_providers``,
the benchmark's own rows) with a few rows changed by hand, and the ledger holds a cumulative
ord and ide per unit for January to March, as written by the real ledger. Every expected figure
below follows from the row numbers (the benchmark runs the same code at 65,000 units: its
timing is in docs/benchmarks.md, not in a test).
"""

from __future__ import annotations

import json
from datetime import date

import pytest
from typer.testing import CliRunner

from benchmarks.gate_bench import Defects, build_home, ledger_records, private_providers
from npr_pipeline.cli import app
from npr_pipeline.home import Home
from npr_pipeline.periods import Period
from npr_pipeline.production.gate import Override, gate_statuses, judge_period
from npr_pipeline.registry import current_registry
from npr_pipeline.store.ledger import load_ledger

MARCH = Period.parse("2026-03")
TODAY = date(2026, 4, 2)  # the March deadline is 7 April: 5 days ahead
UNITS = 3000


def _ids(rows: range) -> list[str]:
    return [f"9{i:07d}" for i in rows]


SPECIALISTS = _ids(range(0, 10))  # contract specialists: no monthly obligation
NOT_YET = _ids(range(10, 15))  # registered from May: not obliged in March, send nothing
CLOSED = _ids(range(15, 20))  # closed at the end of 2025: not obliged, send nothing
ISF = _ids(range(20, 40))  # with an ISF agreement: the isf step's audience
MISSING = [*_ids(range(100, 130)), _ids(range(25, 26))[0]]  # nothing for March (one ISF unit)
HALF = _ids(range(200, 210))  # March ord without its ide
REJECTED = _ids(range(300, 305))  # March files rejected


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Home:
    registry = private_providers(UNITS)
    ids = registry["reshID"]
    registry.loc[ids.isin(SPECIALISTS), "unit_type"] = "contract_specialist"
    registry.loc[ids.isin(NOT_YET), "valid_from"] = "2026-05-01"
    registry.loc[ids.isin(CLOSED), ["valid_from", "valid_to"]] = ["2020-01-01", "2025-12-31"]
    registry.loc[ids.isin(ISF), "isf_agreement"] = "true"
    senders = [u for u in ids if u not in {*NOT_YET, *CLOSED}]
    defects = Defects(frozenset(MISSING), frozenset(HALF), frozenset(REJECTED))
    return build_home(
        tmp_path_factory.mktemp("gate"), registry, ledger_records(senders, MARCH, defects)
    )


def test_every_step_counts_expected_delivered_and_missing(home: Home) -> None:
    statuses = {
        s.step: s for s in gate_statuses(current_registry(home), load_ledger(home), MARCH, TODAY)
    }
    # obliged for the monthly steps: 3,000 - 10 specialists - 5 not yet - 5 closed = 2,980;
    # missing: 31 sent nothing for March, 10 only half, 5 were rejected = 46
    unfinished = sorted({*MISSING, *HALF, *REJECTED})
    for step in ("ventetider", "gjestepasient", "kjernejournal"):
        status = statuses[step]
        assert (status.expected, status.delivered) == (2980, 2934)
        assert sorted(m.reshID for m in status.missing) == unfinished
        assert not status.open and status.deadline == "2026-04-07"
    # isf: the 20 units with an agreement, one of them missing
    isf = statuses["isf"]
    assert (isf.expected, isf.delivered) == (20, 19)
    assert [(m.reshID, m.days_to_deadline) for m in isf.missing] == [("90000025", 5)]
    # what each missing unit last sent reaching furthest: February for the silent and the
    # rejected, March for the half (its ord)
    last = {m.reshID: m.last_submission for m in statuses["ventetider"].missing}
    assert {last[u] for u in MISSING + REJECTED} == {"2026-02-28"}
    assert {last[u] for u in HALF} == {"2026-03-31"}


def test_verdict_inputs_and_left_out(home: Home) -> None:
    registry, ledger = current_registry(home), load_ledger(home)
    excused = Override.of(MISSING, "courier strike", "test", "2026-04-02T08:00:00+00:00")
    verdict = judge_period(registry, ledger, MARCH, TODAY, excused)
    # still closed: the half and the rejected units are not excused
    assert [s.step for s in verdict.closed()] == ["ventetider", "gjestepasient", "kjernejournal"]
    assert verdict.status("isf").open  # its one missing unit is excused
    # half deliveries are left out whole; the excused are named
    assert verdict.left_out == dict(
        sorted({**dict.fromkeys(HALF, "incomplete"), **dict.fromkeys(MISSING, "excused")}.items())
    )
    # inputs: every unit with a complete March pair, the 10 specialists (not obliged, but they
    # delivered) included: 3,000 - 10 silent (not yet, closed) - 31 - 10 - 5 = 2,944
    assert len(verdict.inputs.ords) == len(verdict.inputs.ides) == 2944
    included = set(verdict.inputs.ords["unit"])
    assert set(SPECIALISTS) <= included and not included & {*MISSING, *HALF, *REJECTED}
    assert set(verdict.inputs.ords["submission_id"].str[-10:]) == {"202603-ord"}


def test_npr_status_json_gives_the_same_answer(home: Home) -> None:
    result = CliRunner().invoke(
        app, ["--home", str(home.root), "status", "--period", "2026-03", "--json"]
    )
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    steps = {s["step"]: (s["expected"], s["delivered"], len(s["missing"]), s["gate"])
             for s in doc["steps"]}  # fmt: skip
    assert steps == {
        "ventetider": (2980, 2934, 46, "closed"), "isf": (20, 19, 1, "closed"),
        "gjestepasient": (2980, 2934, 46, "closed"), "kjernejournal": (2980, 2934, 46, "closed"),
    }  # fmt: skip
