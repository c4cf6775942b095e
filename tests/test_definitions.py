"""The Dagster code location loads, and its assets run for real."""

from __future__ import annotations

from pathlib import Path

import duckdb
from dagster import materialize

from assets.definitions import defs
from assets.partitions import period_keys
from assets.registry import unit_registry
from assets.resources import HomeResource


def test_definitions_load() -> None:
    repo = defs.get_repository_def()
    keys = {key.to_user_string() for key in repo.asset_graph.get_all_asset_keys()}
    assert "core/unit_registry" in keys


def test_period_keys_cover_months_tertials_and_year() -> None:
    keys = period_keys([2026])
    assert keys[:2] == ["2026-01", "2026-02"]
    assert {"2026-T1", "2026-T2", "2026-T3", "2026"} <= set(keys)
    assert len(keys) == 16


def test_registry_asset_writes_the_warehouse(tmp_path: Path) -> None:
    result = materialize([unit_registry], resources={"home": HomeResource(root=str(tmp_path))})
    assert result.success
    con = duckdb.connect(str(tmp_path / "warehouse.duckdb"), read_only=True)
    count = con.execute("SELECT count(*) FROM registry").fetchone()[0]
    assert 1800 <= count <= 2300
