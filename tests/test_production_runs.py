"""Production runs: the completeness gate, the audited override, versions and lineage."""

from __future__ import annotations

import json
import os
import re
import shutil
import time
from pathlib import Path

import duckdb
import pytest
from dagster import AssetCheckKey, AssetKey, DagsterInstance, materialize
from typer.testing import CliRunner

from assets.production import outs, production_input
from assets.resources import HomeResource
from npr_pipeline.cli import app
from npr_pipeline.home import Home
from npr_pipeline.settings import TEST, record_environment
from npr_pipeline.synth.run import SynthOptions, run_synth
from tests.report_checks import check_report, embedded_report

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


def _home_without(year: Path, root: Path, left_out: str) -> tuple[Path, str]:
    """A home that received every file of ``year`` except the biggest unit's ``left_out``
    April files (a glob suffix: ``*`` for both, ``ide`` for its ide only)."""
    home = root / "home"
    biggest = max((year / "inbox").glob("*_2026-04_ord.xml"), key=lambda p: p.stat().st_size)
    late = biggest.name.split("_")[0]
    inbox = root / "inbox"
    inbox.mkdir(parents=True)
    skipped = {p.name for p in (year / "inbox").glob(f"{late}_2026-04_{left_out}")}
    for path in (year / "inbox").iterdir():
        if path.name not in skipped:
            shutil.copy(path, inbox / path.name)
    Home(root=home).ensure()
    record_environment(Home(root=home), TEST, "tests")
    assert _npr(home, "registry", "import", str(year / "registry.csv")).exit_code == 0
    assert _npr(home, "intake", str(inbox)).exit_code == 0
    return home, late


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
    return _home_without(year, tmp_path_factory.mktemp("prod-home"), "*")


def _runs(home: Path) -> list[tuple[str, str, bool]]:
    """(job, status, whether its gate checks failed) of every Dagster run under HOME."""
    os.environ["DAGSTER_HOME"] = str(home / "dagster")
    instance = DagsterInstance.get()
    key = AssetCheckKey(AssetKey(["gate", "ventetider"]), "all_obligated_units_delivered")
    failed = {
        r.run_id
        for r in instance.event_log_storage.get_asset_check_execution_history(key, limit=50)
        if r.status.value == "FAILED"
    }
    return [(r.job_name, r.status.value, r.run_id in failed) for r in instance.get_runs()]


def test_closed_gate_exits_3_and_names_the_missing_unit(late_unit) -> None:
    """Refused from the gate's verdict before launching production: seconds, no traces."""
    home, late = late_unit
    status = _npr(home, "status", "--period", "2026-T1", "--json")
    doc = json.loads(status.stdout)
    assert {s["gate"] for s in doc["steps"]} == {"closed"}
    assert all(late in [m["reshID"] for m in s["missing"]] for s in doc["steps"])
    started = time.perf_counter()
    result = _npr(home, "run", "--period", "2026-T1", "--step", "ventetider")
    seconds = time.perf_counter() - started
    assert result.exit_code == 3
    assert late in result.output and "gate closed" in result.output
    assert "Traceback" not in result.output and "STEP_FAILURE" not in result.output
    assert len(result.output.splitlines()) <= 8, result.output
    assert seconds < 30, f"a refusal took {seconds:.0f} s"  # ~3 s alone; the machine is shared
    assert not _versions(home), "nothing may be delivered through a closed gate"
    assert _runs(home) == [("gate_refusal_job", "FAILURE", True)], "refused before launching"
    as_json = _npr(home, "run", "--period", "2026-T1", "--json")
    assert as_json.exit_code == 3
    doc = json.loads(as_json.stdout)
    assert set(doc) >= {"period", "run_id", "gates", "deliveries"} and doc["deliveries"] == []
    assert [g["step"] for g in doc["gates"]] == [
        "ventetider",
        "isf",
        "gjestepasient",
        "kjernejournal",
    ]
    assert all(g["gate"] == "closed" and g["override"] is None for g in doc["gates"])
    assert all([m["reshID"] for m in g["missing"]] == [late] for g in doc["gates"])


def test_run_before_any_intake_is_one_line(tmp_path: Path, year: Path) -> None:
    home = tmp_path / "home"
    result = _npr(home, "run", "--period", "2026-T1")  # not even a HOME: a mistyped --home
    assert result.exit_code == 2 and "does not exist" in result.output
    Home(root=home).ensure()
    result = _npr(home, "run", "--period", "2026-T1")  # a HOME without a registry
    assert result.exit_code == 3 and "no unit registry" in result.output
    assert "Traceback" not in result.output and len(result.output.splitlines()) <= 2
    assert _npr(home, "registry", "import", str(year / "registry.csv")).exit_code == 0
    result = _npr(home, "run", "--period", "2026-T1")
    assert result.exit_code == 3
    assert "nothing has been received for 2026" in result.output
    assert "Traceback" not in result.output and len(result.output.splitlines()) <= 2


def test_an_override_naming_a_unit_that_is_not_missing_exits_2(late_unit, year: Path) -> None:
    home, late = late_unit
    delivered = next(
        p.name.split("_")[0] for p in (year / "inbox").glob("*_2026-04_ord.xml")
        if not p.name.startswith(late)
    )  # fmt: skip
    for units, problem in (
        (f"{late},{delivered}", f"not missing for 2026-T1: {delivered}"),
        ("9999999", "not a unit in the registry: 9999999"),
    ):
        result = _npr(
            home, "run", "--period", "2026-T1", "--allow-missing", units, "--reason", "a reason"
        )
        assert result.exit_code == 2, result.output
        assert problem in result.output.replace("\n", " ")
        assert "Traceback" not in result.output and len(result.output.splitlines()) <= 3
    assert not _versions(home)


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


def test_each_run_writes_the_report_page_of_its_delivery_versions(late_unit) -> None:
    """Three runs of 2026-T1 so far (isf with an override; all four steps once the unit had
    delivered; ventetider again): three numbered pages kept, the newest also index.html, and
    its figures those of the delivery tables of the current versions."""
    home, late = late_unit
    folder = home / "reports" / "2026-T1"
    pages = sorted(p.name for p in folder.glob("v*.html"))
    assert pages == ["v0001.html", "v0002.html", "v0003.html"]
    assert (folder / "index.html").read_bytes() == (folder / "v0003.html").read_bytes()
    first = embedded_report(folder / "v0001.html")
    assert set(first["versions"]) == {"isf"}, "the first run produced isf alone"
    (isf_gate,) = first["completeness"]
    excused = [u for u in isf_gate["units"] if u["status"] == "excused"]
    assert [u["reshID"] for u in excused] == [late]
    assert excused[0]["reason"] == "EPJ upgrade at the unit; agreed with RHF"
    page = check_report(home, folder / "index.html")
    changes = {c["step"]: c for c in page["changes"]}
    assert (changes["isf"]["from"], changes["isf"]["to"]) == (1, 2)
    assert {s["unit"] for s in changes["isf"]["new_submissions"]} == {late}
    moved = {u["unit"] for u in changes["isf"]["units"]}
    assert late in moved, "the unit that came in moved most"
    assert changes["ventetider"]["new_submissions"] == [], "v2 read the same files as v1"
    text = (folder / "index.html").read_text(encoding="utf-8")
    addresses = re.sub(r'xmlns(:\w+)?="[^"]*"', "", text)  # SVG namespace names, not URLs
    assert "http://" not in addresses and "https://" not in addresses
    assert "<script src" not in text


def _materialize_alone(home: Path, *assets):
    """What a UI materialisation or a re-execution of single assets does: a new run, its own
    run id, no run config."""
    return materialize(
        list(assets),
        partition_key="2026-T1",
        resources={"home": HomeResource(root=str(home))},
        raise_on_error=False,
    )


def test_half_delivered_unit_override_end_to_end_and_a_reexecution_keeps_it(
    year: Path, tmp_path: Path
) -> None:
    """A unit sent its April ord but not its ide: the UI cannot publish through the closed
    gate; an override leaves the unit out whole (its lone ord no longer fails the ident
    checks) and stays with the snapshot build when out/isf is materialised again alone."""
    home, half = _home_without(year, tmp_path, "ide.xml")
    out_isf = next(o for o in outs if o.key.path[-1] == "isf")
    checked = _materialize_alone(home, production_input)
    assert checked.success, "the lone ord is left out of the snapshot, quality passes"
    alone = _materialize_alone(home, out_isf)
    assert not alone.success and not _versions(home), "out/isf alone: the gate is closed"

    result = _npr(
        home, "run", "--period", "2026-T1", "--json",
        "--allow-missing", half, "--reason", "EPJ migration; agreed with the RHF",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "run 2026-T1: finished" in result.stderr and "13/13" in result.stderr, "progress"
    assert "dagster - " not in result.output, "Dagster's log goes to the run, not the terminal"
    doc = json.loads(result.stdout)
    assert doc["run_id"] and {d["step"] for d in doc["deliveries"]} == {
        "ventetider", "isf", "gjestepasient", "kjernejournal"
    }  # fmt: skip
    isf = next(d for d in doc["deliveries"] if d["step"] == "isf")
    assert isf["version"] == 1 and isf["tables"]["isf_summary"] > 0
    assert all(g["gate"] == "open" and g["excused"] == [half] for g in doc["gates"])
    assert all(g["override"]["allowed_missing"] == [half] for g in doc["gates"])
    assert doc["headlines"], "headline numbers in the JSON document"
    page = embedded_report(Path(doc["report"]))
    excused = [u for s in page["completeness"] for u in s["units"] if u["status"] == "excused"]
    assert {u["reshID"] for u in excused} == {half} and len(excused) == 4, "excused in each step"
    assert all(u["reason"] == "EPJ migration; agreed with the RHF" for u in excused)

    rerun = _materialize_alone(home, out_isf)
    assert rerun.success and rerun.run_id != doc["run_id"]
    rows = [r for r in _versions(home) if r[0] == "isf"]
    assert [r[1] for r in rows] == [1, 2]
    first, second = (json.loads(r[2]) for r in rows)
    assert first == second and first["excused"] == [half] and first["build_id"]
    assert half not in {s["unit"] for s in json.loads(rows[-1][3])}
