"""The outbox's states (EDI messages and e-mails) as rows of ``outbox_items`` in the HOME's
state database (:mod:`npr_pipeline.store.state`).

They were one JSON file each under ``HOME/outbox/state/``: ~51,000 atomic writes (temporary
file and rename) a national day, millions a year in one folder, and every run globbed that
folder for the e-mails to send. A row is written with the rest of its chunk in one transaction,
"posted before" is one keyed query per chunk, and the e-mails to send are a selection.

A state is a dict, the record the JSON file held: ``id``, ``channel`` (edi | email),
``state``, and as they apply ``submission_id``, ``kind``, ``her``, ``report_sha256``, ``file``,
``why`` (an EDI message), ``unit``, ``day``, ``to``, ``submissions``, ``attempts`` (an e-mail;
the lists as JSON text). Keys with no value are left out when read, as they were in the file.

**Migration.** A HOME with ``HOME/outbox/state/*.json`` files imports them all into the table
in the first transaction that prepares it (the next ``npr intake`` or ``npr send``, under the
HOME lock), with the marker ``outbox_json_imported`` in ``meta`` in the same transaction: once,
all or nothing. The folder is left in place, unread from then on (as the JSON ledger is): an
operator may delete it; removing millions of files must not hold an intake.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import pyarrow as pa

from npr_pipeline.home import Home
from npr_pipeline.store import state as store

_TEXT = ("id", "channel", "submission_id", "kind", "her", "report_sha256", "state", "file",
         "why", "unit", "day")  # fmt: skip
_LISTS = ("to", "submissions", "attempts")  # JSON text in the table, lists in a state
_COLUMNS = _TEXT + _LISTS
_SCHEMA = pa.schema(
    [(name, pa.string()) for name in _COLUMNS] + [("updated", pa.timestamp("us", "UTC"))]
)
_DDL = (
    "CREATE TABLE IF NOT EXISTS outbox_items (id VARCHAR PRIMARY KEY, "
    + ", ".join(f'"{name}" VARCHAR' for name in _COLUMNS[1:])
    + ", updated TIMESTAMPTZ NOT NULL)",
    "CREATE TABLE IF NOT EXISTS meta (key VARCHAR PRIMARY KEY, value VARCHAR NOT NULL)",
)
_SELECT = ", ".join(f'"{name}"' for name in _COLUMNS)
_IMPORTED = "outbox_json_imported"


def json_folder(home: Home) -> Path:
    """``HOME/outbox/state``: where a HOME from before the table kept one JSON file a state."""
    return home.root / "outbox" / "state"


def prepare(home: Home) -> None:
    """Create the table and import the JSON states once, in a write of its own: a writer
    (intake, ``npr send``) calls it before reading, so a read-only opening of a state file
    from before the table finds it."""
    with store.writer(home, _prepare):
        pass


def write_states(home: Home, states: Iterable[dict]) -> None:
    """Insert or replace these states, all in one transaction (the last of an id wins)."""
    rows = {s["id"]: s for s in states}
    if not rows:
        return
    with store.transaction(home, _prepare) as con:
        _insert(con, list(rows.values()), "OR REPLACE")


def write_state(home: Home, item_id: str, state: dict) -> None:
    """Replace one item's state (its id is ``item_id``)."""
    write_states(home, [state | {"id": item_id}])


def read_state(home: Home, item_id: str) -> dict | None:
    """An item's state, or None before it has one."""
    found = read_states(home, [item_id])
    return found.get(item_id)


def read_states(home: Home, item_ids: Iterable[str]) -> dict[str, dict]:
    """The states of those of ``item_ids`` that have one, by id: one keyed query."""
    wanted = pa.table({"id": pa.array(sorted(set(item_ids)), pa.string())})
    with store.reader(home, _prepare) as con:
        con.register("_wanted", wanted)
        rows = con.execute(
            f"SELECT {_SELECT} FROM outbox_items WHERE id IN (SELECT id FROM _wanted)"
        ).fetchall()
    return {row[0]: _state(row) for row in rows}


def unsent_mails(home: Home) -> list[dict]:
    """The e-mails not sent yet (pending, failed), in id order."""
    with store.reader(home, _prepare) as con:
        rows = con.execute(
            f"SELECT {_SELECT} FROM outbox_items WHERE channel = 'email' AND state <> 'sent' "
            "ORDER BY id"
        ).fetchall()
    return [_state(row) for row in rows]


def _state(row: tuple) -> dict:
    state = {}
    for name, value in zip(_COLUMNS, row, strict=True):
        if value is not None:
            state[name] = json.loads(value) if name in _LISTS else value
    return state


def _insert(con: duckdb.DuckDBPyConnection, states: list[dict], verb: str) -> None:
    now = datetime.now(UTC)
    columns = {name: [_cell(s, name) for s in states] for name in _COLUMNS}
    table = pa.table(columns | {"updated": [now] * len(states)}, schema=_SCHEMA)
    con.register("_states", table)
    try:
        con.execute(f"INSERT {verb} INTO outbox_items BY NAME SELECT * FROM _states")
    finally:
        con.unregister("_states")


def _cell(state: dict, name: str) -> str | None:
    value = state.get(name)
    if value is None:
        return None
    return json.dumps(value, ensure_ascii=False) if name in _LISTS else str(value)


def _prepare(con: duckdb.DuckDBPyConnection, home: Home) -> None:
    """Create the tables if missing and import the JSON states once (see the module doc)."""
    for ddl in _DDL:
        con.execute(ddl)
    if con.execute("SELECT count(*) FROM meta WHERE key = ?", [_IMPORTED]).fetchall()[0][0]:
        return
    states = []
    for path in sorted(json_folder(home).glob("*.json")):
        try:
            doc = json.loads(path.read_text(encoding="utf-8"))
        except ValueError:
            continue  # unreadable (a damaged disk): its message is posted again, same id
        if isinstance(doc, dict) and doc.get("id") == path.stem:
            states.append(doc)
    if states:
        _insert(con, states, "OR IGNORE")
    doc = {"states": len(states), "at": datetime.now(UTC).isoformat()}
    con.execute("INSERT INTO meta VALUES (?, ?)", [_IMPORTED, json.dumps(doc)])
