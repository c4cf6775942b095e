"""DuckDB files (and scratch databases) opened as attachments to one DuckDB instance a process.

Why: starting a DuckDB database costs ~25-35 ms of CPU however small the file, since every
instance builds its catalogue of built-in functions afresh (perf: DuckDB's ``CatalogSet`` and
the allocator); an intake of two files started nine, and the state store's openings were over
half of them. Attaching a file to an instance already running costs ~2 ms (read-only) to
~8 ms (read-write, with its checkpoint at the end), and keeps what the stores rely on:

- the file's lock is taken at ``ATTACH`` and released at ``DETACH``: another process cannot
  open a file attached read-write here, and can read one attached read-only;
- ``DETACH`` checkpoints like closing a database does (no write-ahead log is left behind);
- ``USE`` is per connection: each opening is a cursor of its own whose unqualified names are
  its file's, with its own transactions, registrations and temporary tables.

Catalogue functions (``duckdb_tables()``, ``information_schema``) list every database attached
to the instance, other openings' included: filter them by ``current_database()``.

A forked child never touches its parent's instance (DuckDB instances are not fork-safe): the
instance is per process id.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import threading
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

import duckdb

_LOCK = threading.RLock()
_INSTANCE: dict[int, duckdb.DuckDBPyConnection] = {}
_ATTACHED: dict[str, _Attachment] = {}  # by the file's real path
_ALIASES = itertools.count()


def connect(path: Path | str | None = None, read_only: bool = False) -> Opened:
    """The DuckDB file at ``path`` (read-only, or read-write and created if missing), or a new
    empty in-memory database when ``path`` is None; closed by ``close()`` or its ``with``.

    A file this process has attached already is shared, as ``duckdb.connect`` shares one
    instance per file: another connection to it, detached when the last one closes (a
    read-only opening of a file attached read-write reads through it; the reverse fails, as
    ``duckdb.connect`` does).
    """
    key = None if path is None else os.path.realpath(path)
    with _LOCK:
        instance = _instance()
        attached = _ATTACHED.get(key) if key is not None else None
        if attached is not None and (read_only or not attached.read_only):
            attached.users += 1
        else:
            attached = _Attachment(f"npr_{os.getpid()}_{next(_ALIASES)}", read_only)
            target = ":memory:" if key is None else key
            options = " (READ_ONLY)" if read_only and key is not None else ""
            with instance.cursor() as setup:
                setup.execute(f"ATTACH {_literal(target)} AS {attached.alias}{options}")
            if key is not None:
                _ATTACHED[key] = attached
        cursor = instance.cursor()
    try:
        cursor.execute(f"USE {attached.alias}")
    except BaseException:
        cursor.close()
        _release(key, attached)
        raise
    return Opened(cursor, key, attached)


@dataclass
class _Attachment:
    alias: str
    read_only: bool
    users: int = 1


class Opened:
    """One opening: a connection of the process's instance using its attached database.

    Everything a ``DuckDBPyConnection`` does is passed through; ``cursor()`` gives another
    connection to the same database (closing it leaves the database attached), ``close()``
    detaches it when no other opening shares it, which releases the file.
    """

    def __init__(self, con: duckdb.DuckDBPyConnection, key: str | None, attached: _Attachment):
        self._con = con
        self._key = key
        self._attached = attached
        self._closed = False

    def __getattr__(self, name: str) -> Any:
        return getattr(self._con, name)

    def cursor(self) -> duckdb.DuckDBPyConnection:
        cursor = self._con.cursor()
        cursor.execute(f"USE {self._attached.alias}")
        return cursor

    def close(self) -> None:
        """Roll back what is open (closing the connection does), then release the database."""
        if self._closed:
            return
        self._closed = True
        self._con.close()
        _release(self._key, self._attached)

    def __del__(self) -> None:
        """An opening nobody closed is closed when it is collected, as DuckDB's own
        connections are: a forgotten one must not hold its file (nor its memory) for the
        life of the process."""
        if not getattr(self, "_closed", True):
            with contextlib.suppress(Exception):  # at interpreter exit the instance may be gone
                self.close()

    def __enter__(self) -> Opened:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self.close()


def has_table(
    con: duckdb.DuckDBPyConnection | Opened, name: str, database: str | None = None
) -> bool:
    """Whether table ``name`` exists in ``database`` (default: the connection's own)."""
    query = "SELECT count(*) FROM duckdb_tables() WHERE table_name = ? AND database_name = "
    if database is None:
        return bool(con.execute(query + "current_database()", [name]).fetchall()[0][0])
    return bool(con.execute(query + "?", [name, database]).fetchall()[0][0])


def _instance() -> duckdb.DuckDBPyConnection:
    """This process's instance (the caller holds ``_LOCK``)."""
    pid = os.getpid()
    if pid not in _INSTANCE:  # a forked child: its parent's copy is never used (nor closed)
        _INSTANCE[pid] = duckdb.connect(":memory:")
        _ATTACHED.clear()
    return _INSTANCE[pid]


def _release(key: str | None, attached: _Attachment) -> None:
    """One user fewer; the last one detaches the database (and so unlocks its file)."""
    with _LOCK:
        attached.users -= 1
        if attached.users:
            return
        if key is not None and _ATTACHED.get(key) is attached:
            del _ATTACHED[key]
        with _instance().cursor() as cursor:
            cursor.execute(f"DETACH {attached.alias}")


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"
