"""``HOME/state.duckdb``: the register's state as typed tables, one writing process at a time.

DuckDB allows one read-write process per file, and while it has the file open it keeps every
other process out, readers included. So writers hold the file only for their transactions
(:func:`writer`, :func:`transaction`) and close it after; intake, the only writer (it holds
the HOME's ``intake`` lock), commits its records in batches, each one open-commit-close.
A process that meets another's open file retries for up to :data:`READ_WAIT` seconds, then
raises :class:`StateBusy`. Each opening attaches the file to the process's DuckDB instance
(:mod:`npr_pipeline.duck`: ~2-8 ms, where starting a database for it cost ~30).

Readers open the file read-only, so the read-only commands work on a read-only HOME. Inside
:func:`shared_reads` (an intake, which holds the HOME's ``intake`` lock) the readers between
two writes share one opening: an intake of two files read the file ten times, ~20 ms each. A HOME
from before this file (ledger records as JSON files under ``HOME/ledger/``) is read straight
from those files in memory until the first writer imports them (see :mod:`.ledger`).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path

import duckdb

from npr_pipeline import duck
from npr_pipeline.home import Home

STATE_FILE = "state.duckdb"
READ_WAIT = 30.0  # seconds a reader waits for another process's writer to let go
_RETRY_SECONDS = 0.05

Prepare = Callable[[duckdb.DuckDBPyConnection, Home], None]

_SHARED: ContextVar[dict[tuple[Path, Prepare | None], duck.Opened] | None] = ContextVar(
    "state_shared_reads", default=None
)


_HELD: ContextVar[dict[Path, tuple[duck.Opened, set[Prepare]]] | None] = ContextVar(
    "state_held_writes", default=None
)


class StateBusy(RuntimeError):
    """Another process holds the state file for writing (an intake is running)."""


def state_path(home: Home) -> Path:
    return home.root / STATE_FILE


@contextmanager
def writer(home: Home, prepare: Prepare) -> Iterator[duckdb.DuckDBPyConnection]:
    """The read-write connection, the schema made ready by ``prepare`` in its own transaction
    (tables created, old files imported once); the caller runs its transactions on it. The
    file is closed at the end of the block, so readers in other processes get their turn;
    inside :func:`held_writes` at the end of that block instead."""
    path = state_path(home)
    held = _HELD.get()
    if held is not None:
        if path not in held:
            held[path] = (_open_for_writing(home), set())
        con, prepared = held[path]
        if prepare not in prepared:
            _prepare_in_transaction(con, home, prepare)
            prepared.add(prepare)
        yield con
        return
    con = _open_for_writing(home)
    try:
        _prepare_in_transaction(con, home, prepare)
        yield con
    finally:
        con.close()


def _open_for_writing(home: Home) -> duck.Opened:
    home.root.mkdir(parents=True, exist_ok=True)
    _release(state_path(home))  # a read-only opening in this process keeps the writer out
    return _connect(state_path(home), read_only=False)


def _prepare_in_transaction(con: duckdb.DuckDBPyConnection, home: Home, prepare: Prepare) -> None:
    con.begin()
    try:
        prepare(con, home)
        con.commit()
    except BaseException:
        con.rollback()
        raise


@contextmanager
def held_writes() -> Iterator[None]:
    """Within the block this process's writers (and its readers, as cursors) share one
    read-write opening of a state file, closed at the end: an intake batch's commit (the
    batch's number, its lake parts' members, its ledger rows) opened the file three times,
    ~35 ms each. Other processes wait for the block as they wait for one transaction, so it
    is for one batch's commit, not for a run."""
    if _HELD.get() is not None:  # already inside one (a retried commit): that one holds it
        yield
        return
    token = _HELD.set({})
    try:
        yield
    finally:
        for con, _ in (_HELD.get() or {}).values():
            con.close()
        _HELD.reset(token)


@contextmanager
def transaction(home: Home, prepare: Prepare) -> Iterator[duckdb.DuckDBPyConnection]:
    """A read-write connection inside one transaction: committed on success, rolled back on
    any error (see :func:`writer`)."""
    with writer(home, prepare) as con:
        con.begin()
        try:
            yield con
            con.commit()
        except BaseException:
            con.rollback()
            raise


@contextmanager
def reader(home: Home, prepare: Prepare) -> Iterator[duckdb.DuckDBPyConnection]:
    """A read-only view of the committed state. For a HOME without a state file yet (nothing
    written since the upgrade) it is an in-memory database that ``prepare`` fills from the
    old files, so reading needs no write. Inside :func:`shared_reads` the opening is kept for
    the next reader and each reader gets a cursor of it (its own registrations)."""
    path = state_path(home)
    held = (_HELD.get() or {}).get(path)
    if held is not None:  # this process holds the file for writing: read through it
        with held[0].cursor() as cursor:
            yield cursor
        return
    shared = _SHARED.get()
    if shared is None:
        con, _ = _open_for_reading(path, home, prepare)
        try:
            yield con
        finally:
            con.close()
        return
    con = shared.get((path, None)) or shared.get((path, prepare))
    if con is None:
        con, of_file = _open_for_reading(path, home, prepare)
        shared[(path, None if of_file else prepare)] = con  # in memory: what prepare made
    with con.cursor() as cursor:
        yield cursor


def _open_for_reading(path: Path, home: Home, prepare: Prepare) -> tuple[duck.Opened, bool]:
    """The file read-only (True), or, with no state file yet, an in-memory database that
    ``prepare`` filled (False)."""
    if path.exists():
        con = _connect(path, read_only=True)
        if _has_tables(con):
            return con, True
        con.close()  # created by a writer killed before its first commit
    con = duck.connect()
    try:
        con.begin()
        prepare(con, home)
        con.commit()
    except BaseException:
        con.close()
        raise
    return con, False


@contextmanager
def shared_reads() -> Iterator[None]:
    """Within the block the readers of a state file share its openings (read-only, or in
    memory before the file exists), closed by the next writer of this process and at the end.
    Only for a holder of the HOME's ``intake`` lock: no other process writes meanwhile, so an
    opening never shows a stale state, and a writer elsewhere waits for the block as it waits
    for intake's own writes."""
    token = _SHARED.set({})
    try:
        yield
    finally:
        for con in (_SHARED.get() or {}).values():
            con.close()
        _SHARED.reset(token)


def _release(path: Path) -> None:
    """Close this block's shared openings of ``path`` (see :func:`shared_reads`), if any."""
    shared = _SHARED.get() or {}
    for key in [k for k in shared if k[0] == path]:
        shared.pop(key).close()


def _has_tables(con: duckdb.DuckDBPyConnection) -> bool:
    query = "SELECT count(*) FROM duckdb_tables() WHERE database_name = current_database()"
    return bool(con.execute(query).fetchall()[0][0])


def _connect(path: Path, read_only: bool) -> duck.Opened:
    """Open the file, waiting while another process holds it."""
    deadline = time.monotonic() + READ_WAIT
    while True:
        try:
            return duck.connect(path, read_only=read_only)
        except duckdb.IOException as exc:
            if "lock" not in str(exc).lower():
                raise
            if time.monotonic() >= deadline:
                raise StateBusy(
                    f"{path} is held by another process (an intake is writing); "
                    f"waited {READ_WAIT:.0f} s"
                ) from exc
            time.sleep(_RETRY_SECONDS)
