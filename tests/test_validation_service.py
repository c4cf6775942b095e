"""The validation service and vendor test data are answered in full and never produced.

A file addressed to the validation service (HER 121017) or sent from the vendor test
organisation number gets both answers (XPR_VAL and XPR_ERR, the same content checks as a
production file) and leaves nothing production reads: no lake rows, no lopenr claim, no
current submission. A test file that fails the schema is still a test file, with its errors.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from npr_pipeline.envelope import TEST_ORGNR
from npr_pipeline.feedback.reports import read_report_findings, read_report_summary
from npr_pipeline.home import Home
from npr_pipeline.intake.reasons import Status
from npr_pipeline.store.ledger import current_submissions, load_ledger, read_record
from tests.intake_files import (
    Unit,
    bad_care_level,
    fill_inbox,
    make_year,
    reversed_dates,
    run_intake,
    tables_of,
    to_validation_service,
    with_sender,
)


@pytest.fixture(scope="module")
def units(tmp_path_factory: pytest.TempPathFactory) -> list[Unit]:
    year = make_year(tmp_path_factory.mktemp("year"), units=2, through=2, episodes=20.0)
    return sorted(year.values(), key=lambda u: -u.file("ord", 2).stat().st_size)


def test_test_files_get_both_answers_and_never_enter_production(
    units: list[Unit], tmp_path: Path
) -> None:
    unit = units[0]
    service = reversed_dates(to_validation_service(unit.file("ord", 2)))
    vendor = with_sender(unit.file("ord", 2), unit.her, TEST_ORGNR, unit.resh)
    inbox = fill_inbox(tmp_path / "inbox", **{"a_service.xml": service, "b_vendor.xml": vendor})
    home = Home(root=tmp_path / "home")
    first = {s.file: s for s in run_intake(home, inbox).submissions}

    for name, route in (("a_service.xml", "validation_service"), ("b_vendor.xml", "test_orgnr")):
        sub = first[name]
        assert sub.status == Status.TEST, sub.reasons
        assert route in {r.code for r in sub.reasons}
        folder = home.feedback / sub.submission_id
        assert set(read_report_summary(folder)) == {"XPR_VAL", "XPR_ERR"}
        assert tables_of(home, sub.submission_id) == []
    service_rules = {
        f["rule"]
        for f in read_report_findings(home.feedback / first["a_service.xml"].submission_id)
    }
    assert "episode_dates_in_order" in service_rules
    assert first["a_service.xml"].quality["errors"] >= 1
    assert first["b_vendor.xml"].quality == {"errors": 0, "warnings": 0}
    assert current_submissions(load_ledger(home)).empty

    # the same lopenr then arrives in production: nothing claimed it
    production = fill_inbox(tmp_path / "production", [unit.file("ord", 2)])
    (accepted,) = run_intake(home, production).submissions
    assert accepted.status == Status.ACCEPTED, accepted.reasons
    assert list(current_submissions(load_ledger(home))["submission_id"]) == [accepted.submission_id]


def test_test_file_failing_the_schema_is_a_test_file_with_its_errors(
    units: list[Unit], tmp_path: Path
) -> None:
    broken = bad_care_level(to_validation_service(units[0].file("ord", 1)))
    home = Home(root=tmp_path / "home")
    (sub,) = run_intake(home, fill_inbox(tmp_path / "inbox", **{"broken.xml": broken})).submissions
    assert sub.status == Status.TEST
    assert {r.code for r in sub.reasons if r.severity == "error"} == {"schema_error"}
    record = read_record(home, sub.submission_id)
    assert record is not None and record.status == Status.TEST
    assert any(r["code"] == "schema_error" for r in record.reasons)
    summary = read_report_summary(home.feedback / sub.submission_id)
    assert set(summary) == {"XPR_VAL"} and summary["XPR_VAL"]["errors"] >= 1
    assert tables_of(home, sub.submission_id) == []
