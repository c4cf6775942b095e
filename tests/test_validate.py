"""``npr validate``: the register's answers locally, through the real command, with no HOME.

Real synthetic files, real lxml/XSD validation and the real content catalogue; the answers of
``npr validate`` are compared with intake's answers to the same file sent to the validation
service, so "the same answers" is checked, not assumed.
"""

from __future__ import annotations

import json
import re
import tempfile
from datetime import date
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from npr_pipeline.cli import app
from npr_pipeline.feedback.reports import read_report_findings
from npr_pipeline.home import Home
from npr_pipeline.synth.kpp import write_kpp
from tests import intake_files as files
from tests.test_intake_reports import KPP_UNIT, _unit_year


@pytest.fixture(scope="module")
def year(tmp_path_factory: pytest.TempPathFactory) -> tuple[files.Unit, Path]:
    out = tmp_path_factory.mktemp("year")
    units = files.make_year(out, units=2, through=1, episodes=20.0)
    big = max(units.values(), key=lambda u: u.file("ord", 1).stat().st_size)
    return big, out / "registry.csv"


@pytest.fixture
def isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """HOME and the temporary folders point into the test's folder, to see what is left."""
    monkeypatch.setenv("NPR_HOME", str(tmp_path / "home"))
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    return tmp_path


def _validate(*args: str) -> tuple[int, dict]:
    result = CliRunner().invoke(app, ["validate", "--json", *args])
    return result.exit_code, json.loads(result.stdout) if result.stdout.strip() else {}


def test_valid_files_exit_0_and_touch_no_home(
    year: tuple[files.Unit, Path], isolated: Path
) -> None:
    unit, _ = year
    out = isolated / "answers"
    code, doc = _validate(
        "--synthetic-fnr", "--out", str(out), str(unit.file("ord", 1)), str(unit.file("ide", 1))
    )
    assert code == 0, doc
    assert (doc["files"], doc["valid"], doc["invalid"]) == (2, 2, 0)
    for sub in doc["submissions"]:
        assert sub["status"] == "valid" and sub["errors"] == 0
        assert set(sub["reports"]) == {"XPR_VAL", "XPR_ERR"}
        assert all(Path(p).is_file() for paths in sub["reports"].values() for p in paths.values())
        assert Path(sub["reports"]["XPR_VAL"]["xml"]).parent.parent == out
    assert not (isolated / "home").exists()
    assert list((isolated / "scratch").iterdir()) == [], "the temporary workspace stayed"


def test_errors_exit_3_with_the_answers_intake_gives(
    year: tuple[files.Unit, Path], isolated: Path
) -> None:
    """The file sent to the validation service and checked locally: the same XPR_ERR."""
    unit, registry = year
    data = files.reversed_dates(files.to_validation_service(unit.file("ord", 1)))
    inbox = files.fill_inbox(isolated / "inbox", **{"service.xml": data})
    code, doc = _validate("--synthetic-fnr", "--out", str(isolated / "answers"), str(inbox))
    assert code == 3
    (sub,) = doc["submissions"]
    assert sub["status"] == "invalid" and sub["errors"] >= 1
    local = [f for f in sub["findings"] if f["report"] == "XPR_ERR"]
    assert "episode_dates_in_order" in {f["rule"] for f in local}
    assert "local_validation" in {f["rule"] for f in sub["findings"]}

    home = Home(root=isolated / "intake-home")
    files.run_intake(home, inbox)
    received = read_report_findings(home.feedback / sub["submission_id"])
    assert [f for f in received if f["report"] == "XPR_ERR"] == local


def test_schema_error_and_missing_file(year: tuple[files.Unit, Path], isolated: Path) -> None:
    unit, _ = year
    broken = isolated / "broken.xml"
    broken.write_bytes(files.bad_care_level(unit.file("ord", 1).read_bytes()))
    code, doc = _validate(str(broken))
    assert code == 3
    (sub,) = doc["submissions"]
    assert sub["reports"] is None  # no --out: answers only in the summary
    assert {f["rule"] for f in sub["findings"] if f["severity"] == "error"} == {"schema_error"}
    code, _ = _validate(str(isolated / "no-such-file.xml"))
    assert code == 2


@pytest.mark.parametrize(
    ("pattern", "new", "rule"),
    [
        # the envelope by MsgHead v1.2's schema (the first Type used to count)
        (rb"<MIGversion>", b'<Type V="NPR_ORD"/><MIGversion>', "header_schema_error"),
        (rb"<GenDate>[^<]*</GenDate>", b"<GenDate>2026-02-30T00:00:00</GenDate>",
         "header_schema_error"),
        # a known type's payload under an ord header: as the reader of that type says it
        (rb"58_0_1_ord", b"58_0_1_kontakt", "payload_mismatch"),
    ],
)  # fmt: skip
def test_a_fault_of_the_envelope_is_named(
    year: tuple[files.Unit, Path], isolated: Path, pattern: bytes, new: bytes, rule: str
) -> None:
    unit, _ = year
    broken = isolated / "envelope.xml"
    broken.write_bytes(re.sub(pattern, new, unit.file("ord", 1).read_bytes(), count=1))
    code, doc = _validate(str(broken))
    assert code == 3
    (sub,) = doc["submissions"]
    assert {f["rule"] for f in sub["findings"] if f["severity"] == "error"} == {rule}


def test_registry_checks_only_with_a_registry(
    year: tuple[files.Unit, Path], isolated: Path
) -> None:
    """Without a registry the sender is not checked; with one that lacks it, it is unknown."""
    unit, registry = year
    others = pd.read_csv(registry, dtype=str, keep_default_na=False)
    others = others[others["reshID"] != unit.resh]
    without = isolated / "registry.csv"
    others.to_csv(without, index=False)
    file = str(unit.file("ord", 1))
    assert _validate("--synthetic-fnr", file)[0] == 0
    assert _validate("--synthetic-fnr", "--registry", str(registry), file)[0] == 0
    code, doc = _validate("--synthetic-fnr", "--registry", str(without), file)
    assert code == 3
    assert "unknown_sender" in {f["rule"] for f in doc["submissions"][0]["findings"]}
    bad = isolated / "bad.csv"
    bad.write_text("not,a,registry\n", encoding="utf-8")
    assert _validate("--registry", str(bad), file)[0] == 2


def test_a_report_file_gets_the_answers_intake_gives(isolated: Path) -> None:
    """A KPP file with a negative cost (two findings of the KPP catalogue) and a schema-broken
    copy: locally the same XPR_VAL reasons and XPR_ERR findings as intake's validation service
    gives them, HOME untouched. Before, `npr validate` knew ord and ide only."""
    kpp = write_kpp(isolated / "files", _unit_year(KPP_UNIT, "somatic"),
                    (date(2026, 1, 1), date(2026, 4, 30)), 1, 5)  # fmt: skip
    assert kpp is not None
    bad = isolated / "files" / "to_121017.xml"
    bad.write_bytes(files.to_validation_service(kpp))
    inbox = files.fill_inbox(
        isolated / "inbox",
        **{
            "kpp.xml": files.mutate(bad, ('kostnad="', 'kostnad="-')),
            "broken.xml": files.mutate(bad, ('episodeID="', 'episode="')),
        },
    )
    code, doc = _validate("--out", str(isolated / "answers"), str(inbox))
    assert code == 3
    assert not (isolated / "home").exists()
    by_file = {s["file"]: s for s in doc["submissions"]}
    assert {s["message_type"] for s in by_file.values()} == {"NPR_KPP"}
    local = [f for f in by_file["kpp.xml"]["findings"] if f["report"] == "XPR_ERR"]
    assert {f["rule"] for f in local} == {"kpp_cost_non_negative", "kpp_total_equals_costs"}
    broken = by_file["broken.xml"]["findings"]
    assert "schema_error" in {f["rule"] for f in broken if f["severity"] == "error"}

    home = Home(root=isolated / "intake-home")
    files.run_intake(home, inbox)
    for name, sub in by_file.items():
        received = read_report_findings(home.feedback / sub["submission_id"])
        assert [f for f in received if f["report"] == "XPR_ERR"] == [
            f for f in sub["findings"] if f["report"] == "XPR_ERR"
        ], name
        rules = {f["rule"] for f in received if f["report"] == "XPR_VAL"}
        local_rules = {f["rule"] for f in sub["findings"] if f["report"] == "XPR_VAL"}
        assert local_rules - {"local_validation"} <= rules, name
