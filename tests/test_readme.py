"""Every command the README shows runs as written from the repository root.

The commands are read from the README's ``sh`` blocks, not copied here, so the README cannot
drift: only the sizes shrink (fewer units), /tmp paths move into the test's folder, HOME comes
from NPR_HOME, and SUBMISSION_ID becomes a real id.
"""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

from npr_pipeline.home import Home
from npr_pipeline.periods import Period
from npr_pipeline.production.input_checks import check_period
from npr_pipeline.production.run import produce
from npr_pipeline.settings import load_settings
from npr_pipeline.store.ledger import load_records

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"


def _commands() -> list[str]:
    """Every command line of the README's sh blocks, without its trailing comment."""
    text = README.read_text(encoding="utf-8")
    lines = []
    for block in re.findall(r"```sh\n(.*?)```", text, flags=re.S):
        for line in block.splitlines():
            command = re.split(r"\s+#", line, maxsplit=1)[0].strip()
            if command and not command.startswith("#"):
                lines.append(command)
    return lines


def _sh(command: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["bash", "-c", command], cwd=ROOT, env=env, capture_output=True, text=True, timeout=900
    )


def _env(tmp_path: Path) -> dict[str, str]:
    return {
        **os.environ,
        "NPR_HOME": str(tmp_path / "home"),
        "NPR_PSEUDONYM_KEY": "readme-test-key-" + "0" * 48,
    }


def test_every_make_target_is_in_the_readme() -> None:
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    phony = re.search(r"^\.PHONY:(.*)$", makefile, flags=re.M)[1].split()
    text = README.read_text(encoding="utf-8")
    assert [t for t in phony if f"`make {t}`" not in text] == []
    for command in _commands():
        if command.startswith("make "):
            target = command.split()[1]
            assert target in phony, command


def test_every_npr_command_is_in_the_readme() -> None:
    from typer.main import get_command

    from npr_pipeline.cli import app

    shown = " ".join(c for c in _commands() if c.startswith(".venv/bin/npr "))
    names = [n for n in get_command(app).commands if n != "registry"] + ["registry import"]
    assert [n for n in names if f".venv/bin/npr {n}" not in shown] == []


def test_the_readme_npr_commands_run_as_written(tmp_path: Path) -> None:
    env = _env(tmp_path)
    ran = []
    for command in _commands():
        if not command.startswith(".venv/bin/npr ") or command == ".venv/bin/npr demo":
            continue  # `npr demo` is `make demo`, run by the demo's own check
        command = command.replace("/tmp/", f"{tmp_path}/").replace(
            "--units 50", "--units 3 --episodes-per-unit-month 8"
        )
        if "SUBMISSION_ID" in command:
            record = load_records(Home(root=tmp_path / "home"))[0]
            _check(_sh(command.replace("SUBMISSION_ID", record.file), env), command)
            command = command.replace("SUBMISSION_ID", record.submission_id)
        if " diff " in command:
            _second_isf_version(Home(root=tmp_path / "home"))
        _check(_sh(command, env), command)
        ran.append(command.split()[1])
    assert ran == [
        "synth",
        "validate",
        "registry",
        "intake",
        "send",
        "feedback",
        "status",
        "run",
        "diff",
        "extract",
    ]


def _second_isf_version(home: Home) -> None:
    """A second isf version for ``npr diff`` to compare, through the core functions the Dagster
    assets call: the README's own ``npr run`` has already gone through Dagster, and a second
    one would cost a Dagster start and a run's overhead (~12 CPU-seconds) to prove nothing new."""
    period = Period.parse("2026-T1")
    checks = check_period(home, period, "readme-second", load_settings(home).max_excluded_share)
    assert checks.passed, (checks.failed_errors, checks.over)
    produce(home, period, "isf", "readme-second")


def _check(result: subprocess.CompletedProcess, command: str) -> None:
    assert result.returncode == 0, f"{command}\n{result.stdout[-1500:]}\n{result.stderr[-1500:]}"
    assert "Traceback" not in result.stderr, command


def test_the_readme_dagster_command_loads_the_workspace(tmp_path: Path) -> None:
    (dagster,) = [c for c in _commands() if "dagster dev" in c]
    value = re.match(r"DAGSTER_HOME=(\S+) ", dagster)[1]
    assert value.startswith(("$PWD/", "/")), "Dagster requires an absolute DAGSTER_HOME"
    home = Home(root=tmp_path / "home").ensure()
    # as written, but for this test's HOME, and validating instead of serving
    command = dagster.replace("$PWD/data/home", str(home.root)).replace(
        "dagster dev", "dagster definitions validate"
    )
    result = _sh(command, _env(tmp_path))
    assert result.returncode == 0, result.stderr[-2000:]


def test_help_is_for_people() -> None:
    """No RST backticks, no <bool>/<str>/<list[str]> placeholders: PERIOD, DIR, N."""
    from typer.main import get_command
    from typer.testing import CliRunner

    from npr_pipeline.cli import app

    names = [[n] for n in get_command(app).commands if n != "registry"]
    for args in ([], ["registry"], ["registry", "import"], *names):
        result = CliRunner().invoke(app, [*args, "--help"])
        assert result.exit_code == 0, args
        assert "``" not in result.output, args
        assert not re.search(r"<(bool|str|int|float|list\[str\])>", result.output), args
    assert "PERIOD" in CliRunner().invoke(app, ["run", "--help"]).output
