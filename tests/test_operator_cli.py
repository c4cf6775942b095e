"""The operator's first hour: clean refusals, ids and findings where people look, whole lines."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from npr_pipeline.cli import app
from npr_pipeline.home import Home
from npr_pipeline.settings import Settings, save_settings

runner = CliRunner()


def _npr(home: Path, *args: str):
    return runner.invoke(app, ["--home", str(home), *args])


@pytest.fixture(scope="module")
def received(defect_year: Path, tmp_path_factory: pytest.TempPathFactory):
    """A HOME after one intake of a year with labelled faults: (home, intake --json document)."""
    home = tmp_path_factory.mktemp("operator") / "home"
    save_settings(Home(root=home).ensure(), Settings(allow_synthetic_fnr=True))
    assert _npr(home, "registry", "import", str(defect_year / "registry.csv")).exit_code == 0
    result = _npr(home, "intake", str(defect_year / "inbox"), "--json")
    assert result.exit_code == 0, result.output
    return home, json.loads(result.stdout)


def test_status_before_any_submission_is_a_valid_answer(small_year: Path, tmp_path: Path) -> None:
    home = tmp_path / "home"
    assert _npr(home, "registry", "import", str(small_year / "registry.csv")).exit_code == 0
    result = _npr(home, "status", "--period", "2026-T1", "--json")
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert {s["gate"] for s in doc["steps"]} == {"closed"}
    assert all(s["delivered"] == 0 and s["missing"] for s in doc["steps"])
    table = _npr(home, "status", "--period", "2026-T1")
    assert table.exit_code == 0, table.output
    assert "no submissions received yet" in table.stdout
    assert "days past deadline" in table.stdout


@pytest.mark.parametrize(
    "args",
    [
        ["status", "--period", "2026-T1"],
        ["feedback", "0123456789abcdef"],
        ["diff", "--period", "2026-T1", "--step", "isf"],
        ["extract", "--spec", "docs/example-extract.yaml", "--out", "/tmp/npr-never-written"],
    ],
    ids=lambda args: args[0],
)
def test_a_mistyped_home_is_refused_not_created(tmp_path: Path, args: list[str]) -> None:
    home = tmp_path / "hoem"
    if args[0] == "extract":
        args = [*args[:2], str(Path(__file__).resolve().parents[1] / args[2]), *args[3:]]
    result = _npr(home, *args)
    assert result.exit_code == 2
    assert "does not exist" in result.output and str(home) in result.output
    assert len(result.output.strip().splitlines()) == 1
    assert not home.exists()


def test_a_folder_that_is_not_a_home_is_refused(tmp_path: Path) -> None:
    result = _npr(tmp_path, "status", "--period", "2026-T1")
    assert result.exit_code == 2
    assert "is not an npr HOME" in result.output


def test_intake_lists_the_files_to_look_at_with_their_ids(defect_year: Path, received) -> None:
    _, doc = received
    home = Path(str(received[0]) + "-text")
    save_settings(Home(root=home).ensure(), Settings(allow_synthetic_fnr=True))
    assert _npr(home, "registry", "import", str(defect_year / "registry.csv")).exit_code == 0
    result = _npr(home, "intake", str(defect_year / "inbox"))
    assert result.exit_code == 0
    lines = result.stdout.splitlines()
    flagged = [
        s
        for s in doc["submissions"]
        if s["status"] in ("rejected", "failed") or (s.get("quality") or {}).get("errors")
    ]
    assert any(s["status"] == "rejected" for s in flagged)
    assert any(s["status"] == "accepted" for s in flagged), "content errors are listed too"
    assert "files to look at" in result.stdout
    for sub in flagged[:30]:
        assert any(sub["submission_id"] in line and sub["file"] in line for line in lines)
    again = _npr(home, "intake", str(defect_year / "inbox"))  # all duplicates: nothing to list
    assert again.exit_code == 0 and "files to look at" not in again.stdout


def test_feedback_takes_a_file_name_and_shows_content_findings(received) -> None:
    home, doc = received
    with_errors = next(
        s for s in doc["submissions"] if (s.get("quality") or {}).get("errors", 0) > 0
    )
    by_id = _npr(home, "feedback", with_errors["submission_id"], "--json")
    by_name = _npr(home, "feedback", with_errors["file"], "--json")
    assert by_id.exit_code == 0 and by_name.exit_code == 0, by_name.output
    fb = json.loads(by_id.stdout)
    assert json.loads(by_name.stdout) == fb
    assert {"submission_id", "status", "reports", "findings"} <= fb.keys()
    content = [f for f in fb["findings"] if f["report"] == "XPR_ERR"]
    assert content, "the XPR_ERR report's findings are in npr feedback"
    assert content[0].keys() >= {"rule", "severity", "record", "message"}
    assert content[0]["severity"] in ("error", "warning")
    assert content[0]["record"].keys() & {"episodeID", "pasientNr"}
    errors = fb["summary"]["XPR_ERR"]["errors"]
    assert errors and sum(f["severity"] == "error" for f in content) <= errors


def test_feedback_shows_schema_findings_of_a_rejected_file(received) -> None:
    home, doc = received
    rejected = next(s for s in doc["submissions"] if s["status"] == "rejected")
    result = _npr(home, "feedback", rejected["file"])
    assert result.exit_code == 0
    assert rejected["submission_id"] in result.stdout
    assert rejected["reasons"][0]["code"] in result.stdout


def test_feedback_of_an_unknown_file_is_one_clear_line(received) -> None:
    home, _ = received
    result = _npr(home, "feedback", "no_such_file.xml")
    assert result.exit_code == 2
    assert len(result.output.strip().splitlines()) == 1


def test_piped_output_keeps_whole_lines(received) -> None:
    home, doc = received
    sid = doc["submissions"][0]["submission_id"]
    reports = json.loads(_npr(home, "feedback", sid, "--json").stdout)["reports"]
    html = next(iter(reports.values()))["html"]
    result = _npr(home, "feedback", sid)
    line = next(line for line in result.stdout.splitlines() if line.endswith(html))
    assert len(line) > 80, "a line longer than 80 columns stays one line when piped"


def test_diff_and_demo_print_no_python_reprs() -> None:
    from npr_pipeline.cli import _settings_line
    from npr_pipeline.production.diff import _key

    assert _key(["unit", "activity_id"], ("4802960", "A1")) == "unit=4802960, activity_id=A1"
    assert _key(["period"], "2026-T1") == "period=2026-T1"
    line = _settings_line(Home(root=Path("/h")), Settings(environment="test"))
    assert "{" not in line and "synthetic fødselsnummer accepted" in line


def test_the_demo_names_its_units_on_each_route(tmp_path: Path, capsys) -> None:  # noqa: ANN001
    """``npr demo`` shows its daily units beside the monthly ones (issue 13)."""
    from npr_pipeline.cli import _print_routes

    registry = tmp_path / "registry.csv"
    registry.write_text("reshID,name,route\n1,a,daily\n2,b,\n3,c,monthly\n4,d,daily\n")
    _print_routes(registry)
    printed = capsys.readouterr().out
    assert "monthly route: 2 units (2, 3)" in printed
    assert "daily route: 2 units (1, 4)" in printed
