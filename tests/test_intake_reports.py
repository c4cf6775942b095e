"""The report types (NPR_KPP, the forløpsmelding, XPR_VTK, NPR-melding-TSB) through
``intake_directory`` (issue 14): files written by the synth's writers, a real registry whose
``message_types`` say who may send what, real Delta tables and ledger, the answers read back
from disk, the warehouse's ``message_counts`` and ``npr status --json``."""

from __future__ import annotations

import dataclasses
import json
from datetime import UTC, date, datetime
from pathlib import Path

import duckdb
import pandas as pd
import pytest
from typer.testing import CliRunner

from npr_pipeline import reference
from npr_pipeline.cli import app
from npr_pipeline.feedback.reports import read_report_findings
from npr_pipeline.home import Home
from npr_pipeline.intake.run import IntakeSummary, intake_directory
from npr_pipeline.store.batches import committed_batches
from npr_pipeline.store.events import events_dataset
from npr_pipeline.store.ledger import load_records
from npr_pipeline.synth import run as synth_run
from npr_pipeline.synth.coercion import write_decisions
from npr_pipeline.synth.generate import generate_unit_year
from npr_pipeline.synth.kpp import write_kpp
from npr_pipeline.synth.model import UnitInfo, UnitYear
from npr_pipeline.synth.pathways import write_pathways
from npr_pipeline.synth.tsb import write_tsb
from tests.intake_files import fill_inbox, mutate, prepare_test_home, to_validation_service

APRIL = (date(2026, 1, 1), date(2026, 4, 30))
JUNE = (date(2026, 1, 1), date(2026, 6, 30))
KPP_UNIT, PSYCH_UNIT, TSB_UNIT = "9701851", "9086580", "7363682"
EXTRA = {PSYCH_UNIT: ";NPR_FORLOP;XPR_VTK", TSB_UNIT: ";NPR_TSB"}
IN_JULY = datetime(2026, 7, 2, 9, 0, tzinfo=UTC)


def _registry() -> pd.DataFrame:
    return pd.read_csv(
        reference.reference_dir() / "units.csv", dtype=str, comment="#", keep_default_na=False
    )


def _home(root: Path) -> Home:
    """A test HOME whose registry lets these somatic sites send the other types too: the
    psychiatric test unit forløp and XPR_VTK, the TSB test unit NPR-melding-TSB."""
    frame = _registry()
    frame["message_types"] = [t + EXTRA.get(r, "") for r, t in zip(frame["reshID"],
                              frame["message_types"], strict=True)]  # fmt: skip
    root.mkdir(parents=True, exist_ok=True)
    frame.to_csv(root / "registry.csv", index=False)
    return prepare_test_home(Home(root=root / "home"), root / "registry.csv")


def _unit_year(resh: str, sector: str) -> UnitYear:
    row = _registry().set_index("reshID").loc[resh]
    unit = UnitInfo.of(row.to_dict() | {"reshID": resh}, unit_type="trust_site", rhf="HSO",
                       sector=sector, fagomrade="050", size_weight=1.0)  # fmt: skip
    fag = set(reference.code_list("fagomrade"))
    return generate_unit_year(unit, 2026, 6, 7, 6, synth_run._catchment(), fag)


@pytest.fixture(scope="module")
def years() -> dict[str, UnitYear]:
    return {
        KPP_UNIT: _unit_year(KPP_UNIT, "somatic"),
        PSYCH_UNIT: _unit_year(PSYCH_UNIT, "mental_health"),
        TSB_UNIT: _unit_year(TSB_UNIT, "tsb"),
    }


def _intake(home: Home, inbox: Path, files: list[Path], at: datetime = IN_JULY) -> IntakeSummary:
    for old in inbox.glob("*") if inbox.exists() else ():
        old.unlink()
    return intake_directory(home, fill_inbox(inbox, files), workers=1, clock=lambda: at)


def _outcome(summary: IntakeSummary) -> dict[str, tuple[str, list[str]]]:
    return {s.file: (s.status, [r.code for r in s.reasons]) for s in summary.submissions}


def _sid(summary: IntakeSummary, path: Path) -> str:
    return next(s.submission_id for s in summary.submissions if s.file == path.name)


def _stored(home: Home, table: str) -> list[str]:
    """The submission ids of a report table's rows in committed batches."""
    con = duckdb.connect()
    con.register("_rows", events_dataset(home, table))
    con.register("_committed", committed_batches(home))
    return [r[0] for r in con.execute(
        "SELECT submission_id FROM _rows WHERE batch IN (SELECT batch FROM _committed)"
    ).fetchall()]  # fmt: skip


def _kpp_and_forlop(
    tmp_path: Path, years: dict[str, UnitYear], forlop_period: tuple[date, date]
) -> tuple[Home, Path, Path]:
    """A HOME and two clean files: the KPP unit's KPP for April, the psychiatric unit's
    forløpsmelding for ``forlop_period``."""
    out = tmp_path / "files"
    kpp = write_kpp(out, years[KPP_UNIT], APRIL, 1, 5)
    forlop = write_pathways(out, years[PSYCH_UNIT], forlop_period, 1, 5)
    assert kpp is not None and forlop is not None
    return _home(tmp_path), kpp, forlop


def test_every_report_type_is_accepted_stored_and_counted(
    tmp_path: Path, years: dict[str, UnitYear]
) -> None:
    home, kpp, forlop = _kpp_and_forlop(tmp_path, years, JUNE)
    out = tmp_path / "files"
    vtk = write_decisions(out, years[PSYCH_UNIT], APRIL, 1, 5)
    tsb = write_tsb(out, years[TSB_UNIT], APRIL, 1, 5)
    assert vtk is not None and tsb is not None
    files = [kpp, forlop, vtk, tsb]
    summary = _intake(home, tmp_path / "inbox", files)
    assert _outcome(summary) == {f.name: ("accepted", []) for f in files}
    records = {r.file: r for r in load_records(home)}
    found = {
        (r.message_type, r.unit, r.period_from, r.period_to, r.lopenr) for r in records.values()
    }
    assert found == {
        ("NPR_KPP", KPP_UNIT, "2026-01-01", "2026-04-30", 1),
        ("NPR_FORLOP", PSYCH_UNIT, "2026-01-01", "2026-06-30", 1),
        ("XPR_VTK", PSYCH_UNIT, "2026-01-01", "2026-04-30", 1),
        ("NPR_TSB", TSB_UNIT, "2026-01-01", "2026-04-30", 1),
    }  # fmt: skip
    for path, table in ((kpp, "kpp_costs"), (forlop, "pathway_events"),
                        (vtk, "coercion_decisions"), (tsb, "tsb_substances")):  # fmt: skip
        assert set(_stored(home, table)) == {_sid(summary, path)}
        folder = home.feedback / _sid(summary, path)
        assert (folder / "XPR_VAL.xml").is_file() and not (folder / "XPR_ERR.xml").exists()
    con = duckdb.connect(str(home.warehouse), read_only=True)
    counts = con.execute(
        "SELECT message_type, unit, period_to, records, submission_id FROM message_counts"
    ).fetchall()
    assert {(t, u, str(p), s) for t, u, p, _, s in counts} == {
        (r.message_type, r.unit, r.period_to, r.submission_id) for r in records.values()
    }
    expected_kpp = len(_stored(home, "kpp_patients"))
    assert expected_kpp > 0
    assert [n for t, *_, n, _ in counts if t == "NPR_KPP"] == [expected_kpp]


def test_rejected_with_their_reasons(tmp_path: Path, years: dict[str, UnitYear]) -> None:
    home = _home(tmp_path)
    out = tmp_path / "files"
    kpp = write_kpp(out, years[KPP_UNIT], APRIL, 1, 5)
    assert kpp is not None
    first = _intake(home, tmp_path / "inbox", [kpp])
    assert _outcome(first)[kpp.name] == ("accepted", [])
    reused = out / "reused.xml"  # the same lopenr again, other content
    reused.write_bytes(mutate(kpp, ('lokalident="', 'lokalident="x')))
    as_kpp_unit = dataclasses.replace(years[KPP_UNIT].unit, sector="tsb")
    not_obliged = write_tsb(out, dataclasses.replace(years[TSB_UNIT], unit=as_kpp_unit),
                            APRIL, 1, 5)  # the KPP unit does not list NPR_TSB  # fmt: skip
    broken = out / "broken.xml"
    broken.write_bytes(mutate(kpp, ('lopenr="1"', 'lopenr="2"'), ('kostnadKode="', 'kode="')))
    assert not_obliged is not None
    second = _intake(home, tmp_path / "inbox", [reused, not_obliged, broken])
    outcome = _outcome(second)
    assert outcome[reused.name] == ("rejected", ["lopenr_reused"])
    assert outcome[not_obliged.name] == ("rejected", ["type_not_reported"])
    assert outcome[broken.name][0] == "rejected" and "schema_error" in outcome[broken.name][1]
    for path in (reused, not_obliged, broken):
        assert (home.feedback / _sid(second, path) / "XPR_VAL.xml").is_file()
    assert set(_stored(home, "kpp_costs")) == {_sid(first, kpp)}


def test_a_period_date_is_read_by_its_lexical_rules(
    tmp_path: Path, years: dict[str, UnitYear]
) -> None:
    """Found by the mutant campaign: the ledger took the raw attribute, so a valid report with
    whitespace around its period end (xs:date collapses it) stopped every intake with a
    LedgerTypeError, and a rejected one with no date there failed instead of being answered."""
    home = _home(tmp_path)
    out = tmp_path / "files"
    kpp = write_kpp(out, years[KPP_UNIT], APRIL, 1, 5)
    assert kpp is not None
    padded = out / "padded.xml"
    padded.write_bytes(
        mutate(kpp, ('tilDatoPeriode="2026-04-30"', 'tilDatoPeriode=" 2026-04-30\t"'))
    )
    no_date = out / "no_date.xml"
    no_date.write_bytes(
        mutate(
            kpp,
            ('lopenr="1"', 'lopenr="2"'),
            ('fraDatoPeriode="2026-01-01"', 'fraDatoPeriode="2026-0101"'),
        )
    )
    summary = _intake(home, tmp_path / "inbox", [padded, no_date])
    outcome = _outcome(summary)
    assert outcome[padded.name] == ("accepted", [])
    assert outcome[no_date.name] == ("rejected", ["schema_error"])
    records = {r.file: r for r in load_records(home)}
    assert (records[padded.name].period_from, records[padded.name].period_to) == (
        "2026-01-01",
        "2026-04-30",
    )
    assert (records[no_date.name].period_from, records[no_date.name].period_to) == (
        None,
        "2026-04-30",
    )
    assert set(_stored(home, "kpp_costs")) == {_sid(summary, padded)}


@pytest.mark.parametrize(
    ("received", "status", "codes"),
    [
        (datetime(2025, 12, 31, 12, tzinfo=UTC), "test", ["trial_period"]),  # before validation
        (datetime(2026, 1, 1, 12, tzinfo=UTC), "test", ["trial_period"]),  # trial opens
        (datetime(2026, 5, 31, 12, tzinfo=UTC), "test", ["trial_period"]),  # last day outside
        (datetime(2026, 6, 1, 12, tzinfo=UTC), "accepted", []),  # ordinary reporting
    ],
)
def test_the_forlop_trial_period_at_its_boundaries(
    tmp_path: Path, years: dict[str, UnitYear], received: datetime, status: str, codes: list[str]
) -> None:
    home = _home(tmp_path)
    forlop = write_pathways(tmp_path / "files", years[PSYCH_UNIT], APRIL, 1, 5)
    assert forlop is not None
    summary = _intake(home, tmp_path / "inbox", [forlop], at=received)
    assert _outcome(summary) == {forlop.name: (status, codes)}
    assert (home.feedback / _sid(summary, forlop) / "XPR_VAL.xml").is_file()
    stored = set(_stored(home, "pathways"))
    assert stored == ({_sid(summary, forlop)} if status == "accepted" else set())


def test_report_checks_answer_in_xpr_err_in_and_out_of_the_trial(
    tmp_path: Path, years: dict[str, UnitYear]
) -> None:
    home, kpp, forlop = _kpp_and_forlop(tmp_path, years, APRIL)
    out = tmp_path / "files"
    bad_kpp = out / "bad_kpp.xml"
    bad_kpp.write_bytes(mutate(kpp, ('kostnad="', 'kostnad="-')))  # negative, total unchanged
    bad_forlop = out / "bad_forlop.xml"
    bad_forlop.write_bytes(mutate(forlop, ('hendelse="S" dato="2026-', 'hendelse="S" dato="2027-')))
    summary = _intake(home, tmp_path / "inbox", [bad_kpp, bad_forlop],
                      at=datetime(2026, 5, 2, tzinfo=UTC))  # fmt: skip
    outcome = _outcome(summary)
    assert outcome[bad_kpp.name] == ("accepted", ["report_findings", "report_findings"])
    assert outcome[bad_forlop.name] == ("test", ["trial_period", "report_findings"])
    kpp_rules = {f["rule"] for f in read_report_findings(home.feedback / _sid(summary, bad_kpp))}
    assert kpp_rules == {"kpp_cost_non_negative", "kpp_total_equals_costs"}
    forlop_found = read_report_findings(home.feedback / _sid(summary, bad_forlop))
    assert {f["rule"] for f in forlop_found} == {"trial_period", "pathway_events_in_order"}
    assert set(_stored(home, "kpp_costs")) == {_sid(summary, bad_kpp)}  # stored all the same


def test_a_newer_lopenr_is_the_current_report_and_status_lists_the_units(
    tmp_path: Path, years: dict[str, UnitYear]
) -> None:
    home = _home(tmp_path)
    out = tmp_path / "files"
    first = write_kpp(out / "1", years[KPP_UNIT], APRIL, 1, 5)
    newer = write_kpp(out / "2", years[KPP_UNIT], APRIL, 2, 5)
    forlop = write_pathways(out / "1", years[PSYCH_UNIT], JUNE, 1, 5)
    assert first and newer and forlop
    (out / "2" / newer.name).rename(newer := out / "2" / f"z_{newer.name}")
    summary = _intake(home, tmp_path / "inbox", [first, newer, forlop])
    assert [s.status for s in summary.submissions] == ["accepted", "accepted", "accepted"]
    con = duckdb.connect(str(home.warehouse), read_only=True)
    assert con.execute(
        "SELECT submission_id, lopenr FROM message_counts WHERE message_type = 'NPR_KPP'"
    ).fetchall() == [(_sid(summary, newer), 2)]
    con.close()
    result = CliRunner().invoke(
        app,
        ["status", "--period", "2026-04", "--json", "--today", IN_JULY.date().isoformat()],
        env={"NPR_HOME": str(home.root)},
    )
    assert result.exit_code == 0, result.output
    doc = json.loads(result.output)
    assert {"period", "steps"} <= set(doc)
    reports = {r["message_type"]: r for r in doc["reports"]}
    kpp_units = {u for u, t in zip(_registry()["reshID"], _registry()["message_types"],
                                   strict=True) if "NPR_KPP" in t.split(";")}  # fmt: skip
    assert reports["NPR_KPP"]["expected"] == len(kpp_units)
    assert reports["NPR_KPP"]["delivered"] == 1
    assert {u["reshID"] for u in reports["NPR_KPP"]["units"] if u["delivered"]} == {KPP_UNIT}
    assert KPP_UNIT not in {m["reshID"] for m in reports["NPR_KPP"]["missing"]}
    forlop_april = reports["NPR_FORLOP"]
    assert PSYCH_UNIT not in {u["reshID"] for u in forlop_april.pop("not_started")}
    assert forlop_april == {
        "message_type": "NPR_FORLOP",
        "phase": "trial",
        "expected": 0,
        "delivered": 0,
        "missing": [],
        "units": [],
        "start_deadline": "2026-05-16",
    }
    june = json.loads(CliRunner().invoke(
        app, ["status", "--period", "2026-06", "--json"], env={"NPR_HOME": str(home.root)}
    ).output)  # fmt: skip
    forlop_june = {r["message_type"]: r for r in june["reports"]}["NPR_FORLOP"]
    forlop_units = {u for u, t in zip(_registry()["reshID"], _registry()["message_types"],
                                      strict=True) if "NPR_FORLOP" in t.split(";")}  # fmt: skip
    assert (forlop_june["phase"], forlop_june["delivered"]) == ("ordinary", 1)
    assert forlop_june["expected"] == len(forlop_units | {PSYCH_UNIT}) > 100


def test_the_validation_service_answers_a_report_in_full_and_stores_nothing(
    tmp_path: Path, years: dict[str, UnitYear]
) -> None:
    home, kpp, forlop = _kpp_and_forlop(tmp_path, years, JUNE)
    checked = tmp_path / "files" / "to_121017.xml"
    checked.write_bytes(mutate(kpp, ('kostnad="', 'kostnad="-')))
    checked.write_bytes(to_validation_service(checked))
    broken = tmp_path / "files" / "broken_to_121017.xml"
    broken.write_bytes(mutate(checked, ('episodeID="', 'episode="')))
    summary = _intake(home, tmp_path / "inbox", [checked, broken, forlop])
    outcome = _outcome(summary)
    assert outcome[checked.name] == ("test", ["validation_service", "report_findings",
                                              "report_findings"])  # fmt: skip
    assert outcome[broken.name][0] == "test" and "schema_error" in outcome[broken.name][1]
    assert outcome[forlop.name] == ("accepted", [])
    rules = {f["rule"] for f in read_report_findings(home.feedback / _sid(summary, checked))}
    assert {"kpp_cost_non_negative", "kpp_total_equals_costs"} <= rules
    assert (home.feedback / _sid(summary, broken) / "XPR_VAL.xml").is_file()
    assert _stored(home, "kpp_costs") == []
    con = duckdb.connect(str(home.warehouse), read_only=True)
    assert con.execute("SELECT message_type FROM message_counts").fetchall() == [("NPR_FORLOP",)]
    con.close()
    text = CliRunner().invoke(app, ["status", "--period", "2026-06"],
                              env={"NPR_HOME": str(home.root)})  # fmt: skip
    assert text.exit_code == 0, text.output
    assert "report types" in text.output and "NPR_FORLOP" in text.output
