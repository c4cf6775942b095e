"""A full disk and a read-only HOME: one clear line and exit 1, never a page of traceback;
nothing half-written is accepted, and the read-only commands work on a read-only HOME.

The tests run as root, where file modes do not stop writes: a small tmpfs and a read-only bind
mount make the real errors where the machine allows mounting; the injected error runs anywhere.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import asdict
from pathlib import Path

import pytest
from typer.testing import CliRunner

from npr_pipeline.cli import app
from npr_pipeline.errors import storage_problem
from npr_pipeline.home import Home
from npr_pipeline.settings import Settings, save_settings
from npr_pipeline.store.ledger import load_records

runner = CliRunner()
NPR = Path(sys.executable).with_name("npr")


def _npr(home: Path, *args: str):
    return runner.invoke(app, ["--home", str(home), *args])


def _one_line_error(result, what: str) -> str:
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output
    lines = [line for line in result.output.splitlines() if line.startswith("error:")]
    assert len(lines) == 1 and what in lines[0], result.output
    return lines[0]


@contextlib.contextmanager
def _mounted(args: list[str], target: Path) -> Iterator[None]:
    if os.geteuid() != 0 or not shutil.which("mount"):
        pytest.skip("mounting needs root")
    done = subprocess.run(["mount", *args, str(target)], capture_output=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount here: {done.stderr.decode().strip()}")
    try:
        yield
    finally:
        subprocess.run(["umount", "-l", str(target)], check=False)


def _ledger_is_whole(home: Path) -> list[dict]:
    """Every ledger record reads back whole (the table's transactions leave nothing half)."""
    return [asdict(r) for r in load_records(Home(root=home))]


def test_an_injected_full_disk_is_one_line(
    small_year: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    home = tmp_path / "home"

    def full(target: Path, data: bytes, durable: bool = True) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(target))

    monkeypatch.setattr("npr_pipeline.registry.write_bytes", full)
    result = _npr(home, "registry", "import", str(small_year / "registry.csv"))
    line = _one_line_error(result, "disk full")
    assert str(home / "registry") in line and "free there" in line
    assert (home / "logs" / "npr-errors.log").read_text().count("No space left on device")
    assert (
        "Traceback"
        in _npr(home, "--verbose", "registry", "import", str(small_year / "registry.csv")).output
    )


def test_an_error_of_ours_is_one_line_and_its_traceback_is_logged(
    small_year: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Found by the mutant campaign: any error but a storage one printed a page of traceback
    and kept it nowhere; now it is one line, exit 1, and the traceback in HOME's log."""
    home = tmp_path / "home"

    def broken(*args: object, **kwargs: object) -> None:
        raise ValueError("a defect of ours")

    monkeypatch.setattr("npr_pipeline.registry.write_bytes", broken)
    result = _npr(home, "registry", "import", str(small_year / "registry.csv"))
    line = _one_line_error(result, "internal error: ValueError: a defect of ours")
    log = home / "logs" / "npr-errors.log"
    assert str(log) in line
    assert "Traceback" in log.read_text() and "a defect of ours" in log.read_text()


def test_a_reader_that_leaves_is_no_internal_error(small_year: Path, tmp_path: Path) -> None:
    """``npr status --json | head``: the pipe's reader leaves before the document is
    written. That was "internal error: BrokenPipeError" with a traceback logged in HOME."""
    home = tmp_path / "home"
    assert _npr(home, "registry", "import", str(small_year / "registry.csv")).exit_code == 0
    read, write = os.pipe()
    os.close(read)  # gone before the command writes a byte
    try:
        command = [str(NPR), "--home", str(home), "status", "--period", "2026-01", "--json"]
        done = subprocess.run(command, stdout=write, stderr=subprocess.PIPE, text=True, timeout=120)
    finally:
        os.close(write)
    assert done.returncode == 1
    assert done.stderr == "error: standard output closed before the end\n"
    assert not (home / "logs").exists()


def test_storage_problem_reads_other_layers_messages(tmp_path: Path) -> None:
    duck = RuntimeError('IO Error: Could not write file "x.duckdb": No space left on device')
    assert storage_problem(duck, tmp_path).startswith("disk full")
    wrapped = RuntimeError("step failed")
    wrapped.__cause__ = RuntimeError(
        "(sqlite3.OperationalError) attempt to write a readonly database"
    )
    assert storage_problem(wrapped, tmp_path).startswith("read-only file system")
    assert storage_problem(ValueError("bad value"), tmp_path) is None


def test_intake_on_a_full_disk(small_year: Path, tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    with _mounted(["-t", "tmpfs", "-o", "size=1500k", "tmpfs"], home):
        save_settings(Home(root=home).ensure(), Settings(allow_synthetic_fnr=True))
        assert _npr(home, "registry", "import", str(small_year / "registry.csv")).exit_code == 0
        result = _npr(home, "intake", str(small_year / "inbox"))
        assert result.exit_code == 1, result.output
        assert "Traceback" not in result.output
        assert "space" in result.output.lower()
        before = _ledger_is_whole(home)
        # room again: the next intake completes and equals a clean one
        subprocess.run(["mount", "-o", "remount,size=200m", str(home)], check=True)
        again = _npr(home, "intake", str(small_year / "inbox"), "--json")
        assert again.exit_code == 0, again.output
        records = _ledger_is_whole(home)
        assert {r["submission_id"] for r in before} <= {r["submission_id"] for r in records}
        files = len([p for p in (small_year / "inbox").iterdir() if p.is_file()])
        assert len(records) == files
        assert {r["status"] for r in records} == {"accepted"}


def test_read_only_home(small_year: Path, tmp_path: Path) -> None:
    home = tmp_path / "home"
    save_settings(Home(root=home).ensure(), Settings(allow_synthetic_fnr=True))
    assert _npr(home, "registry", "import", str(small_year / "registry.csv")).exit_code == 0
    intake = _npr(home, "intake", str(small_year / "inbox"), "--json")
    assert intake.exit_code == 0
    sid = json.loads(intake.stdout)["submissions"][0]["submission_id"]
    with _mounted(["--bind", "-o", "ro", str(home)], home):
        probe = home / "probe"
        with contextlib.suppress(OSError):
            probe.write_text("x")
            probe.unlink()
            pytest.skip("the bind mount is not read-only here")
        for args in (
            ["status", "--period", "2026-T1", "--json"],
            ["feedback", sid, "--json"],
            ["registry", "import", str(small_year / "registry.csv")],  # unchanged: no write
        ):
            result = _npr(home, *args)
            assert result.exit_code == 0, (args, result.output)
        diff = _npr(home, "diff", "--period", "2026-T1", "--step", "isf")
        assert diff.exit_code == 2 and "Traceback" not in diff.output  # no versions yet
        result = _npr(home, "intake", str(small_year / "inbox"))
        _one_line_error(result, "read-only file system")
