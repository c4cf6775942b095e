"""The warehouse is for analysts: a typed registry table, a comment on every table and column
(from data/dictionary.yaml), proper types, and paths relative to HOME (a copied HOME works)."""

from __future__ import annotations

import shutil
from pathlib import Path

import duckdb
import pandas as pd
import pytest
from typer.testing import CliRunner

from npr_pipeline.cli import app
from npr_pipeline.home import Home
from npr_pipeline.settings import TEST, record_environment
from npr_pipeline.synth.run import SynthOptions, run_synth
from npr_pipeline.warehouse import comment_tables

runner = CliRunner()


def _npr(home: Path, *args: str):
    result = runner.invoke(app, ["--home", str(home), *args])
    assert result.exit_code == 0, result.output
    return result


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A demo-sized HOME: a synthetic year received and its first tertial produced by npr run."""
    root = tmp_path_factory.mktemp("analyst")
    year = root / "year"
    run_synth(
        SynthOptions(out=year, year=2026, through=4, units=4, seed=5, episodes_per_unit_month=8)
    )
    home = root / "home"
    Home(root=home).ensure()
    record_environment(Home(root=home), TEST, "tests")
    _npr(home, "registry", "import", str(year / "registry.csv"))
    _npr(home, "intake", str(year / "inbox"))
    _npr(home, "run", "--period", "2026-T1")
    return home


def _connect(home: Path) -> duckdb.DuckDBPyConnection:
    return duckdb.connect(str(home / "warehouse.duckdb"), read_only=True)


def test_every_table_and_column_of_the_warehouse_has_a_comment(home: Path) -> None:
    con = _connect(home)
    tables = con.execute(
        "SELECT table_name, comment FROM duckdb_tables() UNION ALL "
        "SELECT view_name, comment FROM duckdb_views() WHERE NOT internal"
    ).fetchall()
    columns = con.execute(
        "SELECT table_name, column_name, comment FROM duckdb_columns() WHERE NOT internal"
    ).fetchall()
    names = {name for name, _ in tables}
    assert {"registry", "ledger", "delivery_versions", "isf_detail", "ventetider_current"} <= names
    assert [name for name, comment in tables if not comment] == []
    assert [f"{t}.{c}" for t, c, comment in columns if not comment] == []
    comments = {(t, c): comment for t, c, comment in columns}
    assert comments[("registry", "rhf")].startswith("Regional health authority")
    assert comments[("ventetider_current", "n")] == comments[("ventetider", "n")]


def test_comments_survive_a_replaced_table(home: Path, tmp_path: Path) -> None:
    """CREATE OR REPLACE drops a table's comments; the writer's commit restores them."""
    copy = tmp_path / "warehouse.duckdb"
    shutil.copy(home / "warehouse.duckdb", copy)
    con = duckdb.connect(str(copy))
    con.begin()
    con.execute("CREATE OR REPLACE TABLE registry AS SELECT * FROM registry")
    assert con.execute(
        "SELECT comment FROM duckdb_tables() WHERE table_name = 'registry'"
    ).fetchone()[0] in (None, "")
    comment_tables(con)
    con.commit()
    assert con.execute(
        "SELECT comment FROM duckdb_tables() WHERE table_name = 'registry'"
    ).fetchone()[0]
    bare = con.execute(
        "SELECT count(*) FROM duckdb_columns() WHERE table_name = 'registry' "
        "AND coalesce(comment, '') = ''"
    ).fetchone()[0]
    assert bare == 0


def test_registry_table_names_every_unit_with_its_organisation(home: Path) -> None:
    con = _connect(home)
    registry = con.execute("SELECT * FROM registry").df()
    imported = pd.read_csv(
        sorted((home / "registry").glob("registry-v*.csv"))[-1], dtype=str, comment="#"
    )
    assert len(registry) == len(imported)
    assert {"reshID", "name", "rhf", "trust", "ownership", "financing", "route"} <= set(registry)
    assert set(registry["ownership"]) <= {"public", "private"}
    assert set(registry["route"]) <= {"monthly", "daily"}
    types = dict(con.execute("SELECT column_name, column_type FROM (DESCRIBE registry)").fetchall())
    assert types["isf_agreement"] == "BOOLEAN"
    assert types["valid_from"] == types["valid_to"] == "DATE"
    assert types["size_weight"] == "DOUBLE"


def test_counts_are_integers_dates_are_dates_money_is_decimal(home: Path) -> None:
    con = _connect(home)
    types = {
        (t, c): d
        for t, c, d in con.execute(
            "SELECT table_name, column_name, data_type FROM duckdb_columns() WHERE NOT internal"
        ).fetchall()
    }
    for key in [
        ("isf_summary", "stays"),
        ("isf_detail", "episode_count"),
        ("gjestepasient_matrix", "cases"),
        ("kjernejournal_counts", "rows"),
        ("current_submissions", "episodes"),
        ("gate_runs", "expected"),
        ("delivery_versions", "version"),
    ]:
        assert types[key] in ("INTEGER", "BIGINT"), (key, types[key])
    assert types[("delivery_versions", "created")] == "TIMESTAMP"
    assert types[("gate_runs", "checked")] == "TIMESTAMP"
    assert types[("current_submissions", "period_to")] == "DATE"
    assert types[("isf_detail", "start_time")] == "TIMESTAMP"
    for key in [
        ("isf_detail", "refund"),
        ("isf_summary", "refund"),
        ("gjestepasient_matrix", "amount"),
    ]:
        assert types[key].startswith("DECIMAL"), (key, types[key])


def test_a_copied_home_reads_through_the_copy(home: Path, tmp_path: Path) -> None:
    copy = tmp_path / "copied-home"
    shutil.copytree(home, copy, symlinks=True)
    shutil.rmtree(home / "restricted.moved", ignore_errors=True)
    original = home / "restricted"
    original.rename(home / "restricted.moved")  # nothing may point back into the original
    try:
        con = _connect(copy)
        paths = [
            p
            for (p,) in con.execute(
                "SELECT restricted_path FROM delivery_versions WHERE restricted_path IS NOT NULL"
            ).fetchall()
        ]
        assert paths and all(not Path(p).is_absolute() for p in paths)
        for path in paths:
            assert len(pd.read_parquet(copy / path)) >= 0
        con.close()
        _npr(copy, "status", "--period", "2026-T1")
    finally:
        (home / "restricted.moved").rename(original)
