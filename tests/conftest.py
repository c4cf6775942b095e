"""Shared fixtures: a small synthetic year generated once per test session."""

from __future__ import annotations

from pathlib import Path

import pytest

from npr_pipeline.synth.run import SynthOptions, run_synth

SHARED_REFERENCE = Path(__file__).resolve().parents[1].parent / "shared" / "reference"


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
