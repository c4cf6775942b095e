"""The DuckDB warehouse under HOME: one writing process at a time, readers read-only.

DuckDB allows a single writer per file. Writers go through :func:`writer`, which holds an
exclusive lock file for the whole transaction, so the CLI, a sensor-started run and a test can
never write at once; readers use :func:`reader`, which opens the file read-only.
"""

from __future__ import annotations

import fcntl
from collections.abc import Iterator
from contextlib import contextmanager

import duckdb
import pandas as pd

from npr_pipeline.home import Home


@contextmanager
def writer(home: Home) -> Iterator[duckdb.DuckDBPyConnection]:
    """An exclusive read-write connection inside one transaction (rolled back on error)."""
    home.root.mkdir(parents=True, exist_ok=True)
    with open(home.root / ".warehouse.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        con = duckdb.connect(str(home.warehouse))
        try:
            con.begin()
            yield con
            con.commit()
        except BaseException:
            con.rollback()
            raise
        finally:
            con.close()


@contextmanager
def reader(home: Home) -> Iterator[duckdb.DuckDBPyConnection]:
    """A read-only connection; fails clearly if the warehouse does not exist yet."""
    if not home.warehouse.exists():
        raise FileNotFoundError(f"no warehouse yet at {home.warehouse}: run intake first")
    con = duckdb.connect(str(home.warehouse), read_only=True)
    try:
        yield con
    finally:
        con.close()


def replace_table(con: duckdb.DuckDBPyConnection, name: str, frame: pd.DataFrame) -> None:
    """Replace table ``name`` with ``frame`` (inside the caller's transaction)."""
    con.register("_incoming", frame)
    con.execute(f'CREATE OR REPLACE TABLE "{name}" AS SELECT * FROM _incoming')
    con.unregister("_incoming")


def sync_intake(home: Home, ledger: pd.DataFrame) -> None:
    """Refresh the warehouse's ``ledger`` and ``quality_results`` after an intake.

    The per-submission files under HOME stay the source of truth (written atomically, one per
    submission, by parallel workers); the warehouse gets one consistent copy per intake so
    monitoring and the runbook can query it with SQL.
    """
    pattern = str(home.root / "quality" / "*" / "*" / "*.results.parquet")
    with writer(home) as con:
        replace_table(con, "ledger", ledger)
        has_results = bool(list((home.root / "quality").glob("*/*/*.results.parquet")))
        if has_results:
            con.execute(
                "CREATE OR REPLACE TABLE quality_results AS SELECT * FROM "
                f"read_parquet('{pattern}', union_by_name = true, hive_partitioning = false)"
            )
