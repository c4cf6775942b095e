"""A killed run never blocks the next one; a live one refuses it at once, no silent wait."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from dagster import DagsterInstance, DagsterRun, DagsterRunStatus
from typer.testing import CliRunner

from assets.run_guard import clear_dead_runs, launcher_alive, launcher_tags
from npr_pipeline.cli import app
from npr_pipeline.errors import Refused
from npr_pipeline.home import Home
from npr_pipeline.production.headlines import headlines
from npr_pipeline.registry import import_registry
from npr_pipeline.settings import Settings, save_settings
from npr_pipeline.synth.run import SynthOptions, run_synth
from tests.soak import SOAK

NPR = Path(sys.executable).parent / "npr"
runner = CliRunner()


@pytest.fixture(scope="module")
def year(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("recovery-year")
    run_synth(
        SynthOptions(out=out, year=2026, through=4, units=3, seed=3, episodes_per_unit_month=8)
    )
    return out


def _received_home(year: Path, root: Path) -> Home:
    home = Home(root=root).ensure()
    save_settings(home, Settings(allow_synthetic_fnr=True))
    registry, inbox = str(year / "registry.csv"), str(year / "inbox")
    for args in (["registry", "import", registry], ["intake", inbox]):
        result = runner.invoke(app, ["--home", str(root), *args])
        assert result.exit_code == 0, result.output
    return home


def _dead_pid() -> int:
    proc = subprocess.Popen(["true"])
    proc.wait()
    return proc.pid


def _instance(home: Home) -> DagsterInstance:
    return DagsterInstance.from_config(str(home.dagster_home))


def _started_run(instance: DagsterInstance, tags: dict[str, str], step: str | None = None) -> str:
    run = instance.add_run(
        DagsterRun(job_name="__ephemeral_asset_job__", status=DagsterRunStatus.STARTED, tags=tags)
    )
    if step:
        storage = instance.event_log_storage
        storage.initialize_concurrency_limit_to_default("warehouse")
        assert storage.claim_concurrency_slot("warehouse", run.run_id, step).is_claimed
    return run.run_id


def test_launcher_liveness() -> None:
    assert launcher_alive(launcher_tags()) is True
    assert launcher_alive({**launcher_tags(), "npr/launcher_pid": str(_dead_pid())}) is False
    assert launcher_alive({**launcher_tags(), "npr/launcher_start": "1"}) is False  # pid reused
    assert launcher_alive({**launcher_tags(), "npr/launcher_host": "elsewhere"}) is None
    assert launcher_alive({}) is None


def test_a_dead_run_is_marked_failed_and_its_slot_freed(tmp_path: Path) -> None:
    home = Home(root=tmp_path / "home").ensure()
    with _instance(home) as instance:
        dead = {**launcher_tags(), "npr/launcher_pid": str(_dead_pid()), "npr/period": "2026-T1"}
        run_id = _started_run(instance, dead, step="out__kjernejournal")
        recovered = clear_dead_runs(instance)
        assert len(recovered) == 1 and run_id in recovered[0]
        assert instance.get_run_by_id(run_id).status == DagsterRunStatus.FAILURE
        assert not instance.event_log_storage.get_concurrency_info("warehouse").claimed_slots
        assert clear_dead_runs(instance) == []  # nothing left to do


@pytest.mark.parametrize("tags", ["live", "untagged"])
def test_a_live_run_refuses_the_next_one_at_once(tmp_path: Path, tags: str, year: Path) -> None:
    home = Home(root=tmp_path / "home").ensure()
    import_registry(home, year / "registry.csv")
    with _instance(home) as instance:
        run_id = _started_run(instance, launcher_tags() if tags == "live" else {}, "out__isf")
        with pytest.raises(Refused, match=run_id):
            clear_dead_runs(instance)
        assert instance.get_run_by_id(run_id).status == DagsterRunStatus.STARTED
    started = time.monotonic()
    result = runner.invoke(app, ["--home", str(home.root), "run", "--period", "2026-T1"])
    assert result.exit_code == 3, result.output
    assert "another run is in progress" in result.output and run_id in result.output
    assert time.monotonic() - started < 60, "refused at once, not after waiting for the slot"


def _kill_when_running(proc: subprocess.Popen, home: Home, step_prefix: str) -> str:
    """SIGKILL ``proc`` while it holds the warehouse slot for a step starting ``step_prefix``."""
    index = home.dagster_home / "history" / "runs" / "index.db"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            with sqlite3.connect(f"file:{index}?mode=ro", uri=True, timeout=1) as con:
                held = con.execute(
                    "SELECT step_key FROM concurrency_slots WHERE run_id IS NOT NULL"
                ).fetchall()
        except sqlite3.Error:
            held = []
        if any(step.startswith(step_prefix) for (step,) in held):
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait()
            return held[0][0]
        time.sleep(0.02)
    proc.kill()
    pytest.fail(f"the run never reached a {step_prefix} step (exit {proc.poll()})")


def _run(home: Home, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(NPR), "--home", str(home.root), "run", "--period", "2026-T1", *args],
        capture_output=True,
        text=True,
        timeout=600,
    )


def _kill_then_rerun(year: Path, root: Path, step_prefix: str, *args: str) -> Home:
    home = _received_home(year, root)
    proc = subprocess.Popen(
        [str(NPR), "--home", str(home.root), "run", "--period", "2026-T1", *args],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    _kill_when_running(proc, home, step_prefix)
    with _instance(home) as instance:
        held = instance.event_log_storage.get_concurrency_info("warehouse").claimed_slots
        assert held, "the killed run holds the warehouse slot"
    result = _run(home, *args)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "recovered" in result.stderr and held[0].run_id in result.stderr
    with _instance(home) as instance:
        assert instance.get_run_by_id(held[0].run_id).status == DagsterRunStatus.FAILURE
    return home


@pytest.mark.soak
@pytest.mark.skipif(not SOAK, reason="two npr run processes and a kill, about 25 CPU-s: make soak")
def test_a_run_killed_mid_step_does_not_block_the_next(year: Path, tmp_path: Path) -> None:
    _kill_then_rerun(year, tmp_path / "home", "out__", "--step", "ventetider")


@pytest.mark.soak
@pytest.mark.skipif(not SOAK, reason="about 85 s a kill point: make soak only")
@pytest.mark.parametrize(
    "step", ["core__current_submissions", "out__ventetider", "out__isf", "out__kjernejournal"]
)
def test_killed_at_any_step_the_rerun_equals_a_clean_run(
    year: Path, tmp_path_factory: pytest.TempPathFactory, step: str
) -> None:
    clean = _received_home(year, tmp_path_factory.mktemp("clean") / "home")
    assert _run(clean).returncode == 0
    killed = _kill_then_rerun(year, tmp_path_factory.mktemp("killed") / "home", step)
    assert headlines(killed, "2026-T1") == headlines(clean, "2026-T1")
