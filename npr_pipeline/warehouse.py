"""The DuckDB warehouse under HOME: one writing process at a time, readers read-only.

DuckDB allows a single writer per file. Writers go through :func:`writer`, which holds an
exclusive lock file for the whole transaction, so the CLI, a sensor-started run and a test can
never write at once; readers use :func:`reader`, which opens the file read-only.
"""

from __future__ import annotations

import fcntl
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from functools import cache
from pathlib import Path

import duckdb
import pandas as pd
import pyarrow as pa

from npr_pipeline import duck
from npr_pipeline.duck import has_table
from npr_pipeline.home import Home
from npr_pipeline.quality.submission import MARKER, read_marker_at, results_file
from npr_pipeline.store.lake import parquet_source
from npr_pipeline.store.ledger import LEDGER_SCHEMA, load_ledger, record_count


@contextmanager
def writer(home: Home) -> Iterator[duckdb.DuckDBPyConnection]:
    """An exclusive read-write connection inside one transaction (rolled back on error)."""
    home.root.mkdir(parents=True, exist_ok=True)
    with open(home.root / ".warehouse.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        con = duck.connect(home.warehouse)
        try:
            con.begin()
            yield con
            comment_tables(con)  # CREATE OR REPLACE drops comments: every write restores them
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
    con = duck.connect(home.warehouse, read_only=True)
    try:
        yield con
    finally:
        con.close()


def replace_table(con: duckdb.DuckDBPyConnection, name: str, frame: pd.DataFrame) -> None:
    """Replace table ``name`` with ``frame`` (inside the caller's transaction)."""
    con.register("_incoming", frame)
    con.execute(f'CREATE OR REPLACE TABLE "{name}" AS SELECT * FROM _incoming')
    con.unregister("_incoming")


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def comment_tables(con: duckdb.DuckDBPyConnection) -> None:
    """Give every warehouse table, view and column without a comment its comment from the data
    dictionary (data/dictionary.yaml), so any DuckDB client shows what a column means.

    Runs at the end of every writer transaction: a table created or replaced in it (which
    drops its comments) is commented before anyone can read it. Only the uncommented ones
    are touched, so a write that created nothing costs one catalogue query.
    """
    from npr_pipeline.research.dictionary import dictionary  # yaml + pydantic, read once

    known = dictionary()
    columns = {(c.table, c.column): c.description for c in known.columns}
    bare = con.execute(
        "SELECT table_name, 'TABLE' FROM duckdb_tables() WHERE database_name = "
        "current_database() AND schema_name = 'main' AND coalesce(comment, '') = '' "
        "UNION ALL SELECT view_name, 'VIEW' FROM duckdb_views() WHERE NOT internal AND "
        "database_name = current_database() AND schema_name = 'main' "
        "AND coalesce(comment, '') = ''"
    ).fetchall()
    for name, kind in bare:
        base = name.removesuffix("_current") if kind == "VIEW" else name
        text = known.tables.get(base)
        if text and kind == "VIEW":
            text = f"{base}, only the newest version of each period (what to read by default)."
        if text:
            con.execute(f'COMMENT ON {kind} "{name}" IS {_literal(text)}')
    for table, column in con.execute(
        "SELECT table_name, column_name FROM duckdb_columns() WHERE database_name = "
        "current_database() AND schema_name = 'main' AND NOT internal "
        "AND coalesce(comment, '') = ''"
    ).fetchall():  # tables' and views' columns (a <table>_current view's are its table's)
        text = columns.get((table, column)) or columns.get((table.removesuffix("_current"), column))
        if text:
            con.execute(f'COMMENT ON COLUMN "{table}"."{column}" IS {_literal(text)}')


def retype(con: duckdb.DuckDBPyConnection, table: str, column: str, sql_type: str) -> None:
    """Bring a column an older release wrote as text to its proper type (e.g. a date)."""
    found = con.execute(
        "SELECT data_type FROM duckdb_columns() WHERE database_name = current_database() "
        "AND table_name = ? AND column_name = ?",
        [table, column],
    ).fetchall()
    if found and found[0][0] == "VARCHAR" and sql_type != "VARCHAR":
        con.execute(f'ALTER TABLE "{table}" ALTER "{column}" TYPE {sql_type}')


def utc_timestamp(text: str | None) -> datetime | None:
    """An ISO 8601 time (with offset) as a naive UTC datetime, for a TIMESTAMP column."""
    if not text:
        return None
    moment = datetime.fromisoformat(text)
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC).replace(tzinfo=None)
    return moment


def sync_intake(home: Home, ledger: pd.DataFrame, fresh: Sequence[pa.Table] = ()) -> None:
    """Bring the warehouse's ``ledger`` copy up to date with ``ledger`` (records in the shape
    of :func:`~npr_pipeline.store.ledger.load_ledger`: those the intake committed, or all),
    refresh ``message_counts`` (the report types' current reports with their record counts)
    and bring ``quality_results`` up to date.

    The ledger is append-only and a record is never rewritten, so the copy only appends the
    records it lacks (keyed on ``submission_id``): copying the whole ledger grew with the
    year's millions of records. A copy that still holds fewer records than the ledger after
    that (missing, from before the key, or behind after a run killed between its ledger
    commit and this sync) is rebuilt from the whole ledger.

    The results files under HOME stay the source of truth (written atomically by parallel
    workers, one per batch of deliveries); the warehouse holds one copy for SQL. It follows
    the deliveries' markers, each naming the file its rows are in
    (:func:`~npr_pipeline.quality.submission.results_file`): it keeps the modification time of
    every marker it has loaded a delivery by (``quality_results_files``) and replaces only the
    rows of deliveries whose marker is new or rewritten since (a delivery checked again names
    a new batch file: its rows there replace its old ones, never add to them). Reloading all
    would read every delivery of the year at every intake (~24,000 by December). Rows of the
    deliveries this intake checked come from ``fresh`` (the tables their files were written
    from); others (a run killed before its sync) are read from the files their markers name.
    A copy synced before markers named files kept the results files' times: those differ from
    the markers', so each delivery is read once more by its marker.
    """
    from npr_pipeline.reports import message_counts, report_types, store_counts  # intake's

    stamps = _results_stamps(home)
    reports = load_ledger(home, message_types=[t.message_type for t in report_types()])
    counts = message_counts(home, reports)
    records = record_count(home)
    with writer(home) as con:
        _sync_ledger(con, home, ledger, records)
        store_counts(con, counts)
        if stamps.empty:
            return
        synced = _synced_stamps(con)
        merged = stamps.merge(synced, on="ord_sid", how="left", suffixes=("", "_synced"))
        changed = (merged["mtime_ns"] != merged["mtime_ns_synced"]).fillna(True)  # NA: new file
        stale = merged[changed.astype(bool)]
        if not stale.empty:
            _replace_results(con, stale, fresh)
        replace_table(con, "quality_results_files", stamps[["ord_sid", "mtime_ns"]])


def _sync_ledger(
    con: duckdb.DuckDBPyConnection, home: Home, ledger: pd.DataFrame, records: int
) -> None:
    """Append the records of ``ledger`` the copy lacks; rebuild it unless it then holds the
    ledger's ``records`` (records are never removed, so as many means the same ones).

    The copy has the ledger's own column types (:data:`LEDGER_SCHEMA`), whatever the records:
    typed from the records instead, a column none of them fills (every ``period_from`` of a
    year of daily files) would come out of pandas as DuckDB's NULL type and refuse the first
    value appended. A copy of other types (an older release's: dates as text) is rebuilt.

    The key and type checks run at every intake, not once per warehouse version: measured on
    a copy of 200,000 records among 20 other tables, ``_keyed`` costs ~0.6 ms of CPU and
    ``_described`` ~0.4 ms, next to the ``count(*)`` after the append (~0.3 ms), so a marker
    of the checked version would save a millisecond per intake and be one more state to keep.
    """
    if _keyed(con, "ledger") and tuple(_described(con, "ledger")) == _copy_types():
        _insert(con, ledger)
        if con.execute("SELECT count(*) FROM ledger").fetchall()[0][0] == records:
            return
    columns = ", ".join(f'"{name}" {kind}' for name, kind in _copy_types())
    con.execute(f"CREATE OR REPLACE TABLE ledger ({columns}, PRIMARY KEY (submission_id))")
    _insert(con, load_ledger(home))


@cache
def _copy_types() -> tuple[tuple[str, str], ...]:
    """The copy's column names and DuckDB types: :data:`LEDGER_SCHEMA` as DuckDB reads it."""
    with duck.connect() as con:
        con.register("_typed", LEDGER_SCHEMA.empty_table())
        return tuple(_described(con, "_typed"))


def _insert(con: duckdb.DuckDBPyConnection, ledger: pd.DataFrame) -> None:
    """Insert the records the copy lacks, each value cast to its column's type (dates come
    as ISO text from :func:`load_ledger`)."""
    con.register("_incoming", ledger)
    con.execute("INSERT INTO ledger BY NAME SELECT * FROM _incoming ON CONFLICT DO NOTHING")
    con.unregister("_incoming")


def _described(con: duckdb.DuckDBPyConnection, table: str) -> list[tuple[str, str]]:
    """A table's (or a registered view's) column names and types, in order."""
    return con.execute(f"SELECT column_name, column_type FROM (DESCRIBE {table})").fetchall()


def _keyed(con: duckdb.DuckDBPyConnection, table: str) -> bool:
    """Whether ``table`` exists with its primary key (a copy from before the key has none)."""
    return bool(
        con.execute(
            "SELECT count(*) FROM duckdb_constraints() WHERE database_name = current_database() "
            "AND table_name = ? AND constraint_type = 'PRIMARY KEY'",
            [table],
        ).fetchall()[0][0]
    )


def _results_stamps(home: Home) -> pd.DataFrame:
    """Every checked delivery's marker: its ord submission id, path and modification time (a
    stat each, as before: the markers are read only for deliveries to load)."""
    paths = sorted((home.root / "quality").glob(f"*/*/*{MARKER}"))
    return pd.DataFrame(
        {
            "ord_sid": [p.name.removesuffix(MARKER) for p in paths],
            "path": [str(p) for p in paths],
            "mtime_ns": pd.array([p.stat().st_mtime_ns for p in paths], dtype="Int64"),
        }
    )


def _synced_stamps(con: duckdb.DuckDBPyConnection) -> pd.DataFrame:
    """The files the warehouse's rows came from (none yet: everything is new)."""
    if not has_table(con, "quality_results_files"):
        return pd.DataFrame({"ord_sid": pd.Series(dtype=str), "mtime_ns": pd.Series(dtype="Int64")})
    synced = con.execute("SELECT ord_sid, mtime_ns FROM quality_results_files").df()
    return synced.astype({"mtime_ns": "Int64"})


def _replace_results(
    con: duckdb.DuckDBPyConnection, stale: pd.DataFrame, fresh: Sequence[pa.Table]
) -> None:
    """Delete the stale deliveries' rows and insert their current ones."""
    con.register("_stale", stale[["ord_sid"]])
    parts = []
    held: set[str] = set()
    if fresh:
        table = pa.concat_tables(fresh, promote_options="permissive")
        held = set(table.column("ord_sid").to_pylist())
        con.register("_fresh", table)
        parts.append("SELECT * FROM _fresh WHERE ord_sid IN (SELECT ord_sid FROM _stale)")
    unread = {sid: Path(p) for sid, p in zip(stale["ord_sid"], stale["path"], strict=True)
              if sid not in held}  # fmt: skip
    if unread:
        parts.append(f"SELECT * FROM {_named_rows(unread)}")
    source = " UNION ALL BY NAME ".join(parts)
    if has_table(con, "quality_results"):
        con.execute("DELETE FROM quality_results WHERE ord_sid IN (SELECT ord_sid FROM _stale)")
        con.execute(f"INSERT INTO quality_results BY NAME {source}")
    else:
        con.execute(f"CREATE TABLE quality_results AS {source}")
    con.unregister("_stale")
    if fresh:
        con.unregister("_fresh")


def _named_rows(markers: dict[str, Path]) -> str:
    """A DuckDB source of the results rows of these deliveries (marker path by ord submission
    id), each from the file its marker names: a batch file also holds other deliveries' rows,
    and a delivery's older rows stay in its previous batch file until that is swept, so rows
    are kept by (file, ord) pair."""
    named = {sid: results_file(path, read_marker_at(path)) for sid, path in markers.items()}
    paths = list(dict.fromkeys(named.values()))
    pairs = ", ".join(_literal(f"{path}|{sid}") for sid, path in named.items())
    source = parquet_source(paths, union_by_name=True, filename=True)
    return (
        f"(SELECT * EXCLUDE (filename) FROM {source} WHERE filename || '|' || ord_sid IN ({pairs}))"
    )
