"""Production runs: the completeness gate, the audited override, versions and lineage."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import duckdb
import pytest
from typer.testing import CliRunner

from npr_pipeline.cli import app
from npr_pipeline.home import Home
from npr_pipeline.settings import TEST, record_environment
from npr_pipeline.synth.run import SynthOptions, run_synth

runner = CliRunner()


@pytest.fixture(scope="module")
def year(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("prod-year")
    run_synth(
        SynthOptions(out=out, year=2026, through=4, units=3, seed=3, episodes_per_unit_month=8)
    )
    return out


def _npr(home: Path, *args: str):
    return runner.invoke(app, ["--home", str(home), *args])


def _versions(home: Path) -> list[tuple]:
    con = duckdb.connect(str(home / "warehouse.duckdb"), read_only=True)
    try:
        tables = {t for (t,) in con.execute("SELECT table_name FROM duckdb_tables()").fetchall()}
        if "delivery_versions" not in tables:
            return []
        return con.execute(
            "SELECT step, version, override, submissions FROM delivery_versions "
            "WHERE period = '2026-T1' ORDER BY step, version"
        ).fetchall()
    finally:
        con.close()


@pytest.fixture(scope="module")
def late_unit(year: Path, tmp_path_factory: pytest.TempPathFactory):
    """A home where one unit has not sent its April files yet."""
    home = tmp_path_factory.mktemp("prod-home") / "home"
    registry = year / "registry.csv"
    biggest = max((year / "inbox").glob("*_2026-04_ord.xml"), key=lambda p: p.stat().st_size)
    late = biggest.name.split("_")[0]
    inbox = home.parent / "inbox"
    inbox.mkdir(parents=True)
    for path in (year / "inbox").iterdir():
        if not path.name.startswith(f"{late}_2026-04"):
            shutil.copy(path, inbox / path.name)
    Home(root=home).ensure()
    record_environment(Home(root=home), TEST, "tests")
    assert _npr(home, "registry", "import", str(registry)).exit_code == 0
    assert _npr(home, "intake", str(inbox)).exit_code == 0
    return home, late


def test_closed_gate_exits_3_and_names_the_missing_unit(late_unit) -> None:
    home, late = late_unit
    status = _npr(home, "status", "--period", "2026-T1", "--json")
    doc = json.loads(status.stdout)
    assert {s["gate"] for s in doc["steps"]} == {"closed"}
    assert all(late in [m["reshID"] for m in s["missing"]] for s in doc["steps"])
    result = _npr(home, "run", "--period", "2026-T1", "--step", "ventetider")
    assert result.exit_code == 3
    assert late in result.output and "gate closed" in result.output
    assert not _versions(home), "nothing may be delivered through a closed gate"


def test_override_needs_a_reason(late_unit) -> None:
    home, late = late_unit
    result = _npr(home, "run", "--period", "2026-T1", "--allow-missing", late)
    assert result.exit_code == 2


def test_override_is_recorded_in_the_delivery(late_unit) -> None:
    home, late = late_unit
    result = _npr(
        home, "run", "--period", "2026-T1", "--step", "isf",
        "--allow-missing", late, "--reason", "EPJ upgrade at the unit; agreed with RHF",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    (step, version, override, submissions) = _versions(home)[-1]
    assert (step, version) == ("isf", 1)
    recorded = json.loads(override)
    assert recorded["allowed_missing"] == [late]
    assert recorded["reason"].startswith("EPJ upgrade")
    assert recorded["requested_by"]
    assert late not in {s["unit"] for s in json.loads(submissions)}


def test_gate_opens_when_the_unit_delivers_and_versions_keep_lineage(late_unit, year: Path) -> None:
    home, late = late_unit
    inbox = home.parent / "inbox"
    for path in (year / "inbox").glob(f"{late}_2026-04_*.xml"):
        shutil.copy(path, inbox / path.name)
    assert _npr(home, "intake", str(inbox)).exit_code == 0
    status = json.loads(_npr(home, "status", "--period", "2026-T1", "--json").stdout)
    assert {s["gate"] for s in status["steps"]} == {"open"}
    first = _npr(home, "run", "--period", "2026-T1")
    assert first.exit_code == 0, first.output
    assert "headline numbers 2026-T1" in first.output and "refund (NOK)" in first.output
    second = _npr(home, "run", "--period", "2026-T1", "--step", "ventetider")
    assert second.exit_code == 0, second.output
    rows = _versions(home)
    assert [(s, v) for s, v, _, _ in rows if s == "ventetider"] == [
        ("ventetider", 1),
        ("ventetider", 2),
    ]
    isf = [r for r in rows if r[0] == "isf"]
    assert [v for _, v, _, _ in isf] == [1, 2]
    assert isf[-1][2] is None, "a run without override records none"
    units = {s["unit"] for s in json.loads(isf[-1][3])}
    assert late in units and len(units) == 3
    assert all(s["checksum"] and len(s["checksum"]) == 64 for s in json.loads(isf[-1][3]))
    diff = _npr(home, "diff", "--period", "2026-T1", "--step", "isf", "--json")
    assert diff.exit_code == 0, diff.output
    changes = json.loads(diff.stdout)["tables"]["isf_detail"]
    assert changes["added"] > 0 and changes["removed"] == 0
