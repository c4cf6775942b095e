"""Shared fixtures: a small synthetic year generated once per test session."""

from __future__ import annotations

from pathlib import Path

import pytest

from npr_pipeline.synth.run import SynthOptions, run_synth

SHARED_REFERENCE = Path(__file__).resolve().parents[1].parent / "shared" / "reference"

LONGEST_FIRST = (
    "test_two_routes.py",
    "test_production_runs.py",
    "test_readme.py",
    "test_run_recovery.py",
    "test_no_fnr_outside_vault.py",
    "test_intake_hostile.py",
)
"""The modules of most CPU in ``make test`` (20-80 CPU-seconds each; tests/README.md), longest
first. ``--dist loadscope`` hands modules to the workers in collection order: run one of these
last and a worker finishes it alone while the other idles (223 against 288 CPU-seconds)."""


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The longest modules first, each keeping its tests' order (module fixtures rely on it)."""
    items.sort(key=lambda item: _rank(item.path.name))


def _rank(module: str) -> int:
    return LONGEST_FIRST.index(module) if module in LONGEST_FIRST else len(LONGEST_FIRST)


@pytest.fixture(scope="session")
def shared_reference() -> Path:
    """The public reference schemas beside the checkout (skip where ../shared is absent)."""
    if not SHARED_REFERENCE.is_dir():
        pytest.skip("../shared/reference is absent: cannot check against the public schemas")
    return SHARED_REFERENCE


@pytest.fixture(scope="session")
def small_year(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Six units, January-April 2026, no defects."""
    out = tmp_path_factory.mktemp("synth-clean")
    run_synth(
        SynthOptions(out=out, year=2026, through=4, units=6, seed=7, episodes_per_unit_month=30)
    )
    return out


@pytest.fixture(scope="session")
def defect_year(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Eight units with a labelled fault in most files."""
    out = tmp_path_factory.mktemp("synth-defects")
    run_synth(
        SynthOptions(
            out=out, year=2026, through=3, units=8, seed=11, defects=0.6, episodes_per_unit_month=10
        )
    )
    return out
