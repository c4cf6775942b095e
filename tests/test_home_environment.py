"""Test and production HOMEs (CONTRACT.md, "HOME environments"), and no registry fallback.

Every HOME records once whether it is a ``test`` or a ``production`` HOME: ``npr demo`` and the
tests make test HOMEs, so does a first registry import of a synthetic registry; anything else is
production. A production HOME refuses synthetic registries and synthetic fødselsnummer. No HOME
falls back to the bundled synthetic registry: intake and production refuse until a registry has
been imported.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pandas as pd
import pytest
from stdnum.no import orgnr as orgnr_check
from typer.testing import CliRunner

from npr_pipeline import cli
from npr_pipeline.cli import app
from npr_pipeline.home import Home
from npr_pipeline.intake.run import intake_directory
from npr_pipeline.periods import Period
from npr_pipeline.production.run import produce
from npr_pipeline.registry import NoRegistry, current_registry, import_registry
from npr_pipeline.settings import (
    PRODUCTION,
    TEST,
    HomeEnvironmentError,
    Settings,
    environment,
    load_settings,
    record_environment,
    save_settings,
)
from npr_pipeline.store.ledger import load_records

runner = CliRunner()


def _npr(home: Path, *args: str):
    return runner.invoke(app, ["--home", str(home), *args])


def _recorded(home: Path) -> str:
    return json.loads((home / "environment.json").read_text())["environment"]


def _real_registry(synthetic: Path, target: Path) -> Path:
    """The synthetic registry with other (made-up, valid) ids: not a synthetic registry."""
    frame = pd.read_csv(synthetic, dtype=str, keep_default_na=False)
    for n, index in enumerate(frame.index):
        frame.loc[index, "orgnr"] = next(
            number for digit in range(10) if orgnr_check.is_valid(number := f"9{n:07d}{digit}")
        )
        frame.loc[index, "reshID"] = f"99{n:05d}"
        frame.loc[index, "herID"] = f"98{n:05d}"
    frame.to_csv(target, index=False)
    return target


def _one_unit_inbox(year: Path, target: Path) -> Path:
    """One unit's January ord and ide."""
    target.mkdir(parents=True)
    unit = sorted((year / "inbox").glob("*_2026-01_ord.xml"))[0].name.split("_")[0]
    for path in (year / "inbox").glob(f"{unit}_2026-01_*.xml"):
        shutil.copy(path, target / path.name)
    return target


def test_a_first_synthetic_registry_import_makes_a_test_home(
    tmp_path: Path, small_year: Path
) -> None:
    home = tmp_path / "home"
    result = _npr(home, "registry", "import", str(small_year / "registry.csv"))
    assert result.exit_code == 0, result.output
    assert _recorded(home) == TEST
    assert load_settings(Home(root=home)).synthetic_fnr_accepted


def test_a_production_home_refuses_a_synthetic_registry(tmp_path: Path, small_year: Path) -> None:
    home = tmp_path / "home"
    real = _real_registry(small_year / "registry.csv", tmp_path / "real.csv")
    assert _npr(home, "registry", "import", str(real)).exit_code == 0
    assert _recorded(home) == PRODUCTION
    result = _npr(home, "registry", "import", str(small_year / "registry.csv"))
    assert result.exit_code == 3
    assert "synthetic registry" in result.output and len(result.output.strip().splitlines()) == 1
    assert len(list((home / "registry").glob("registry-v*.csv"))) == 1
    with pytest.raises(HomeEnvironmentError):
        record_environment(Home(root=home), TEST, "a test")
    # the bundled reference registry is just as synthetic
    bundled = Path(__file__).resolve().parents[1] / "data" / "reference" / "units.csv"
    assert _npr(home, "registry", "import", str(bundled)).exit_code == 3


def test_a_production_home_refuses_synthetic_fodselsnummer(
    tmp_path: Path, small_year: Path
) -> None:
    """The same files: valid in a test HOME, test data (error findings) in a production one."""
    inbox = _one_unit_inbox(small_year, tmp_path / "inbox")
    errors = {}
    for kind in (TEST, PRODUCTION):
        home = Home(root=tmp_path / kind)
        import_registry(home.ensure(), small_year / "registry.csv")  # a test HOME, first
        if kind == PRODUCTION:  # as if these files had reached a production HOME
            home.environment_file.write_text(json.dumps({"environment": PRODUCTION}))
        assert load_settings(home).synthetic_fnr_accepted is (kind == TEST)
        summary = intake_directory(home, inbox, workers=1)
        ide = next(s for s in summary.submissions if s.message_type == "NPR_IDE")
        errors[kind] = ide.quality["errors"]
    assert errors[TEST] == 0 and errors[PRODUCTION] > 0
    # settings that allow synthetic numbers do not make a production HOME accept them
    production = Home(root=tmp_path / PRODUCTION)
    save_settings(production, Settings(allow_synthetic_fnr=True))
    with pytest.raises(HomeEnvironmentError, match="production HOME"):
        load_settings(production)
    result = _npr(production.root, "intake", str(inbox))
    assert result.exit_code == 3 and len(result.output.strip().splitlines()) == 1


def test_no_home_falls_back_to_the_bundled_registry(tmp_path: Path, small_year: Path) -> None:
    home = Home(root=tmp_path / "home").ensure()
    with pytest.raises(NoRegistry, match="npr registry import"):
        current_registry(home)
    for args in (
        ("intake", str(small_year / "inbox")),
        ("status", "--period", "2026-T1"),
        ("run", "--period", "2026-T1"),
    ):
        result = _npr(home.root, *args)
        assert result.exit_code == 3, (args, result.output)
        assert "no unit registry imported" in result.output, args
        assert len(result.output.strip().splitlines()) == 1, result.output
    assert not load_records(home), "intake received files without a registry"
    with pytest.raises(NoRegistry):  # the production core refuses too, whatever starts it
        produce(home, Period.parse("2026-T1"), "isf", "run-1")


def test_demo_makes_a_test_home_and_refuses_a_production_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def stop(**_: object) -> None:  # the demo's synthetic year is tested elsewhere
        raise SystemExit(0)

    monkeypatch.setattr(cli, "synth", stop)
    assert _npr(tmp_path / "demo", "demo").exit_code == 0
    assert _recorded(tmp_path / "demo") == TEST
    production = Home(root=tmp_path / "production")
    record_environment(production, PRODUCTION, "a deployment")
    result = _npr(production.root, "demo")
    assert result.exit_code == 3 and "production HOME" in result.output


def test_a_home_records_its_environment_once(tmp_path: Path, small_year: Path) -> None:
    home = Home(root=tmp_path / "home")
    assert environment(home) == PRODUCTION and not home.environment_file.exists()
    assert record_environment(home, TEST, "tests") == TEST
    assert record_environment(home, TEST, "tests again") == TEST
    with pytest.raises(HomeEnvironmentError, match="cannot become a production HOME"):
        record_environment(home, PRODUCTION, "a deployment")
    # a HOME from before environments were recorded: its first registry version decides
    legacy = Home(root=tmp_path / "legacy")
    import_registry(legacy.ensure(), small_year / "registry.csv")
    legacy.environment_file.unlink()
    assert environment(legacy) == TEST and _recorded(legacy.root) == TEST
