"""The submission ledger: one immutable record per distinct file received, in a DuckDB table.

A record is written last, after the lake and the reports, so it is the commit mark of a
submission: a run killed before it leaves no record and the file is simply processed again.
Records are never rewritten; "current" is derived from them (newest lopenr, then extraction
date, per unit, message type and year), so an older file arriving late never replaces a newer.

The tables live in ``HOME/state.duckdb`` (:mod:`npr_pipeline.store.state`):

- ``ledger``: one typed row per record, ``PRIMARY KEY (submission_id)``; reasons as JSON text.
- ``lopenr_claims``: ``PRIMARY KEY (unit, message_type, year, lopenr)``, one row per accepted
  record, inserted in the same transaction as the record. Two writers can therefore never both
  accept one lopenr: the database refuses the second (:class:`LopenrClaimed`), whatever the
  lock and intake's own checks did.
- ``failed``: the marker of a file that failed on our side (status ``failed``): not a record;
  replaced at every retry, deleted in the transaction that commits the file for good.
- ``meta``: ``ledger_json_imported`` marks the one-time import of the JSON records.
- ``ledger_unit``: an index on ``ledger (unit)``, so that intake's look-ups of one unit's
  records (:class:`LedgerLookup`) cost the same whatever the year's size.
- ``batches``: one row per intake batch of the daily route (:mod:`npr_pipeline.store.batches`):
  taken uncommitted by ``begin_batch``, marked committed in the transaction that commits the
  batch's records (``write_records(..., batch=...)``), so its events become visible exactly
  when its ledger rows do.

Every field is typed and bounded when the record is written (:func:`typed`), so reading the
ledger cannot fail on a record that was written: one absurd file must never make a HOME
unusable.

**Migration.** A HOME from before the table holds one JSON file per record in ``HOME/ledger/``
(and failed markers in ``HOME/ledger/failed/``). The first write to the state (the next
``npr intake``, under the HOME lock) imports them all in its first transaction and records the
``meta`` marker in the same transaction, so the import happens once, all or nothing. The JSON
files are left in place, unread from then on. Numbers no int64 holds (written before records
were typed) import as NULL (counts as 0), invalid dates as NULL; if two old accepted records
share a lopenr, the one received first keeps the claim. Until that first write, readers read
the JSON files into an in-memory table, so a read-only HOME keeps working.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field, fields
from datetime import UTC, date, datetime
from pathlib import Path

import duckdb
import pandas as pd
import pyarrow as pa

from npr_pipeline.home import Home
from npr_pipeline.store import state

LEDGER_COLUMNS = (
    "submission_id",
    "checksum",
    "file",
    "size",
    "received",
    "status",
    "unit",
    "her",
    "orgnr",
    "message_type",
    "version",
    "year",
    "period_from",
    "period_to",
    "extracted",
    "lopenr",
    "receiver",
    "episodes",
    "patients",
    "reason_codes",
)


@dataclass
class LedgerRecord:
    """Everything the register knows about one received file."""

    submission_id: str
    checksum: str
    file: str
    size: int
    received: str
    status: str
    unit: str | None = None
    her: str | None = None
    orgnr: str | None = None
    message_type: str | None = None
    version: str | None = None
    year: int | None = None
    period_from: str | None = None
    period_to: str | None = None
    extracted: str | None = None
    lopenr: int | None = None
    receiver: str | None = None
    episodes: int = 0
    patients: int = 0
    reasons: list[dict[str, object]] = field(default_factory=list)


ACCEPTED = "accepted"
INT64_MAX = 2**63 - 1
YEAR_MAX = 9999
_INTS = ("size", "year", "lopenr", "episodes", "patients")
_DATES = ("period_from", "period_to", "extracted")
_TEXTS = tuple(f.name for f in fields(LedgerRecord) if f.name not in _INTS + ("reasons",))
_REQUIRED_TEXTS = ("submission_id", "checksum", "file", "received", "status")
_NULLABLE_INTS = ("year", "lopenr")

_COLUMNS = """
    submission_id VARCHAR PRIMARY KEY,
    checksum VARCHAR NOT NULL,
    file VARCHAR NOT NULL,
    size BIGINT NOT NULL,
    received VARCHAR NOT NULL,
    status VARCHAR NOT NULL,
    unit VARCHAR,
    her VARCHAR,
    orgnr VARCHAR,
    message_type VARCHAR,
    version VARCHAR,
    year INTEGER,
    period_from DATE,
    period_to DATE,
    extracted DATE,
    lopenr BIGINT,
    receiver VARCHAR,
    episodes BIGINT NOT NULL,
    patients BIGINT NOT NULL,
    reasons VARCHAR NOT NULL,
    reason_codes VARCHAR NOT NULL
"""
_DDL = (
    f"CREATE TABLE IF NOT EXISTS ledger ({_COLUMNS})",
    f"CREATE TABLE IF NOT EXISTS failed ({_COLUMNS})",
    """CREATE TABLE IF NOT EXISTS lopenr_claims (
        unit VARCHAR NOT NULL,
        message_type VARCHAR NOT NULL,
        year INTEGER NOT NULL,
        lopenr BIGINT NOT NULL,
        submission_id VARCHAR NOT NULL,
        PRIMARY KEY (unit, message_type, year, lopenr)
    )""",
    "CREATE TABLE IF NOT EXISTS meta (key VARCHAR PRIMARY KEY, value VARCHAR NOT NULL)",
    """CREATE TABLE IF NOT EXISTS batches (
        batch BIGINT PRIMARY KEY,
        started TIMESTAMPTZ NOT NULL,
        committed TIMESTAMPTZ,
        files BIGINT,
        versions VARCHAR
    )""",
    # the latest receipt time (intake's clock) of the files committed with the batch: what a
    # daily unit's state "was extracted" at, which production checks dates against
    "ALTER TABLE batches ADD COLUMN IF NOT EXISTS received TIMESTAMPTZ",
    # intake's lopenr rules look up one unit's records (:class:`LedgerLookup`): without it each
    # look-up scans the year's millions of records
    "CREATE INDEX IF NOT EXISTS ledger_unit ON ledger (unit)",
)
_FIELDS = tuple(f.name for f in fields(LedgerRecord))
_ROW = _FIELDS + ("reason_codes",)
_ARROW = pa.schema(
    [
        (
            name,
            pa.int32()
            if name == "year"
            else pa.int64()
            if name in _INTS
            else pa.date32()
            if name in _DATES
            else pa.string(),
        )
        for name in _ROW
    ]
)
_SELECT = ", ".join(_ROW)
LEDGER_SCHEMA = pa.schema([_ARROW.field(name) for name in LEDGER_COLUMNS])
"""The ledger's own types of the columns :func:`load_ledger` gives (dates as dates): what a
copy of it is created with, so a column no record has filled yet is typed all the same."""
_IMPORTED = "ledger_json_imported"


@dataclass(frozen=True)
class BatchCommit:
    """The batch row committed with a batch's records: its number, how many files it holds
    and the Delta version each event table reached (for audit; readers filter on ``batch``)."""

    batch: int
    files: int
    versions: dict[str, int] = field(default_factory=dict)


class LedgerTypeError(ValueError):
    """A record field of the wrong type or out of range: a bug, refused before it is written."""


class LopenrClaimed(ValueError):
    """Another accepted record holds this (unit, message type, year, lopenr)."""

    def __init__(self, record: LedgerRecord, owner: str | None) -> None:
        super().__init__(
            f"lopenr {record.lopenr} of {record.unit} {record.message_type} {record.year} "
            f"is claimed by {owner}"
        )
        self.record = record
        self.owner = owner


def typed(record: LedgerRecord) -> LedgerRecord:
    """The record with every field checked: texts are text, counts and numbers fit int64, the
    year fits the table's INTEGER, dates are ISO dates and reasons serialise as JSON."""
    for name in _INTS:
        value = getattr(record, name)
        if value is None and name in _NULLABLE_INTS:
            continue
        if type(value) is not int or not 0 <= value <= INT64_MAX:
            raise LedgerTypeError(f"ledger field {name}={value!r} is not an int64 count")
    if record.year is not None and record.year > YEAR_MAX:
        raise LedgerTypeError(f"ledger field year={record.year!r} is not a year")
    for name in _TEXTS:
        value = getattr(record, name)
        if value is not None and not isinstance(value, str):
            raise LedgerTypeError(f"ledger field {name}={value!r} is not text")
    for name in _REQUIRED_TEXTS:
        if getattr(record, name) is None:
            raise LedgerTypeError(f"ledger field {name} is missing")
    for name in _DATES:
        value = getattr(record, name)
        if value is not None and _date(value) is None:
            raise LedgerTypeError(f"ledger field {name}={value!r} is not an ISO date")
    if not isinstance(record.reasons, list) or not all(isinstance(r, dict) for r in record.reasons):
        raise LedgerTypeError(f"ledger field reasons={record.reasons!r} is not a list of dicts")
    try:
        json.dumps(record.reasons, ensure_ascii=False, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise LedgerTypeError(f"ledger field reasons is not JSON: {exc}") from None
    return record


def _date(value: object) -> date | None:
    if not isinstance(value, str) or len(value) != 10:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        return None


def _row(record: LedgerRecord) -> tuple[object, ...]:
    """A typed record as one table row, in ``_ROW`` order. Its fields are read as they are:
    ``asdict`` deep-copied every reason only for them to be serialised (~0.1 ms a record)."""
    doc = {name: getattr(record, name) for name in _FIELDS}
    for name in _DATES:
        doc[name] = _date(doc[name])
    doc["reason_codes"] = ",".join(str(r.get("code")) for r in record.reasons)
    doc["reasons"] = json.dumps(record.reasons, sort_keys=True, ensure_ascii=False)
    return tuple(doc[name] for name in _ROW)


def _from_row(row: tuple[object, ...]) -> LedgerRecord:
    doc = dict(zip(_ROW, row, strict=True))
    doc.pop("reason_codes")
    for name in _DATES:
        if doc[name] is not None:
            doc[name] = doc[name].isoformat()
    try:
        reasons = json.loads(doc["reasons"])
    except ValueError:
        reasons = []
    doc["reasons"] = reasons if isinstance(reasons, list) else []
    return LedgerRecord(**doc)


@contextmanager
def _writing(home: Home) -> Iterator[duckdb.DuckDBPyConnection]:
    with state.transaction(home, _prepare) as con:
        yield con


@contextmanager
def _reading(home: Home) -> Iterator[duckdb.DuckDBPyConnection]:
    with state.reader(home, _prepare) as con:
        yield con


def _prepare(con: duckdb.DuckDBPyConnection, home: Home) -> None:
    """Create the tables if missing and import the JSON records once (see the module doc)."""
    for ddl in _DDL:
        con.execute(ddl)
    if con.execute("SELECT count(*) FROM meta WHERE key = ?", [_IMPORTED]).fetchall()[0][0]:
        return
    counts = _import_json(con, home)
    con.execute(
        "INSERT INTO meta VALUES (?, ?)",
        [_IMPORTED, json.dumps(counts | {"at": datetime.now(UTC).isoformat()})],
    )


def write_record(home: Home, record: LedgerRecord) -> None:
    """Commit one submission (see :func:`write_records`); raises :class:`LopenrClaimed`, and
    writes nothing, if another accepted record holds its lopenr."""
    refused = write_records(home, [record])
    if refused:
        raise refused[0]


def write_failed(home: Home, record: LedgerRecord) -> None:
    """Mark a file as failed: archived, not final; the next intake reads it again."""
    write_records(home, [], [record])


def write_records(
    home: Home,
    records: list[LedgerRecord],
    failed: list[LedgerRecord] = (),
    batch: BatchCommit | None = None,
) -> list[LopenrClaimed]:
    """Commit submissions and failed markers in one transaction: each new record with its
    lopenr claim if accepted, its failed marker dropped; a record that exists already is left
    as it is (records are never rewritten); a failed marker replaces the previous one. With
    ``batch``, the same transaction marks that intake batch committed (its events visible).

    If the database refuses a claim (another accepted record holds the lopenr), nothing of the
    batch is kept and it is committed again record by record: the refused records are left
    out and returned, everything else is committed.
    """
    rows = [_row(typed(r)) for r in records]
    failed_rows = [_row(typed(r)) for r in failed]
    if not rows and not failed_rows and batch is None:
        return []
    received = max((r.received for r in records), default=None)
    with state.writer(home, _prepare) as con:
        try:
            _commit(con, rows, failed_rows, batch, received)
            return []
        except duckdb.ConstraintException:
            pass  # a claim refused: find which, one record per transaction
        refused = []
        for record, row in zip(records, rows, strict=True):
            try:
                _commit(con, [row], [])
            except duckdb.ConstraintException:
                refused.append(LopenrClaimed(record, _owner(con, record)))
        _commit(con, [], failed_rows, batch, received)
        return refused


def _commit(
    con: duckdb.DuckDBPyConnection,
    rows: list[tuple[object, ...]],
    failed_rows: list[tuple[object, ...]],
    batch: BatchCommit | None = None,
    received: str | None = None,
) -> None:
    """One transaction: rolled back whole on any error. ``received``: the batch's latest
    receipt time."""
    con.begin()
    try:
        if rows:
            con.register("_batch", _arrow(rows))
            con.execute(
                "CREATE OR REPLACE TEMP TABLE _new AS SELECT * FROM _batch WHERE submission_id "
                "NOT IN (SELECT submission_id FROM ledger)"
            )
            con.unregister("_batch")
            con.execute("INSERT INTO ledger BY NAME SELECT * FROM _new")
            con.execute(
                "INSERT INTO lopenr_claims SELECT unit, message_type, year, lopenr, "
                "submission_id FROM _new WHERE status = ? AND unit IS NOT NULL AND "
                "message_type IS NOT NULL AND year IS NOT NULL AND lopenr IS NOT NULL",
                [ACCEPTED],
            )
            con.execute(
                "DELETE FROM failed WHERE submission_id IN (SELECT submission_id FROM _new)"
            )
            con.execute("DROP TABLE _new")
        if failed_rows:
            con.register("_failed", _arrow(failed_rows))
            con.execute("INSERT OR REPLACE INTO failed BY NAME SELECT * FROM _failed")
            con.unregister("_failed")
        if batch is not None:
            con.execute(
                "UPDATE batches SET committed = now(), received = CAST(? AS TIMESTAMPTZ), "
                "files = ?, versions = ? WHERE batch = ?",
                [received, batch.files, json.dumps(batch.versions, sort_keys=True), batch.batch],
            )
        con.commit()
    except BaseException:
        con.rollback()
        raise


def _owner(con: duckdb.DuckDBPyConnection, record: LedgerRecord) -> str | None:
    owner = con.execute(
        "SELECT submission_id FROM lopenr_claims WHERE unit = ? AND message_type = ? "
        "AND year = ? AND lopenr = ?",
        [record.unit, record.message_type, record.year, record.lopenr],
    ).fetchall()
    return owner[0][0] if owner else None


def has_record(home: Home, submission_id: str) -> bool:
    """Whether this exact file has been received and committed before (a key lookup)."""
    with _reading(home) as con:
        return bool(
            con.execute(
                "SELECT count(*) FROM ledger WHERE submission_id = ?", [submission_id]
            ).fetchall()[0][0]
        )


def known_submissions(home: Home, submission_ids: Iterable[str]) -> set[str]:
    """Which of these submission ids have a record (one query for many files)."""
    wanted = pa.table({"submission_id": pa.array(list(submission_ids), pa.string())})
    with _reading(home) as con:
        con.register("_wanted", wanted)
        rows = con.execute(
            "SELECT submission_id FROM ledger WHERE submission_id IN "
            "(SELECT submission_id FROM _wanted)"
        ).fetchall()
    return {r[0] for r in rows}


def read_records(home: Home, submission_ids: Iterable[str]) -> list[LedgerRecord]:
    """The records of these submissions (those that have one), in submission id order: one
    keyed query, where reading every record grows with the year's millions of files."""
    wanted = pa.table({"submission_id": pa.array(sorted(set(submission_ids)), pa.string())})
    with _reading(home) as con:
        con.register("_wanted", wanted)
        rows = con.execute(
            f"SELECT {_SELECT} FROM ledger WHERE submission_id IN "
            "(SELECT submission_id FROM _wanted) ORDER BY submission_id"
        ).fetchall()
    return [_from_row(row) for row in rows]


def submission_ids(home: Home, received_before: datetime | None = None) -> set[str]:
    """Every committed submission id (only those received before ``received_before``, when
    given): one column, not the records."""
    where, params = "", []
    if received_before is not None:
        where, params = " WHERE TRY_CAST(received AS TIMESTAMPTZ) < ?", [received_before]
    with _reading(home) as con:
        rows = con.execute(f"SELECT submission_id FROM ledger{where}", params).fetchall()
    return {row[0] for row in rows}


def read_record(home: Home, submission_id: str) -> LedgerRecord | None:
    """The record of one submission, or None."""
    with _reading(home) as con:
        rows = con.execute(
            f"SELECT {_SELECT} FROM ledger WHERE submission_id = ?", [submission_id]
        ).fetchall()
    return _from_row(rows[0]) if rows else None


def load_records(home: Home) -> list[LedgerRecord]:
    """Every committed record, in submission id order."""
    return _load(home, "ledger")


RecordKey = tuple[str, str, str, str | None, str | None, int | None, int | None]


def record_keys(home: Home) -> list[RecordKey]:
    """(submission id, file, status, unit, message type, year, lopenr) of every record, in
    submission id order: what intake checks an inbox against when it reads the whole ledger.
    The whole records, reasons and all, cost ~2 KB each in Python, held for the whole intake
    (~70 MiB of the main process on one national day of history)."""
    with _reading(home) as con:
        return con.execute(
            "SELECT submission_id, file, status, unit, message_type, year, lopenr FROM ledger "
            "ORDER BY submission_id"
        ).fetchall()


def load_failed(home: Home) -> list[LedgerRecord]:
    """Files that failed on our side and have not been committed since."""
    return _load(home, "failed")


def _load(home: Home, table: str) -> list[LedgerRecord]:
    with _reading(home) as con:
        rows = con.execute(f"SELECT {_SELECT} FROM {table} ORDER BY submission_id").fetchall()
    return [_from_row(row) for row in rows]


def load_ledger(
    home: Home,
    submission_ids: Iterable[str] | None = None,
    message_types: Iterable[str] | None = None,
) -> pd.DataFrame:
    """All records as a table (reasons flattened to their codes; dates as ISO text); only
    those of ``submission_ids`` and of ``message_types``, when given (one query either way)."""
    selected = ", ".join(
        f"strftime({c}, '%Y-%m-%d') AS {c}" if c in _DATES else c for c in LEDGER_COLUMNS
    )
    where, params = [], []
    if submission_ids is not None:
        where.append("submission_id IN (SELECT unnest(?::VARCHAR[]))")
        params.append(sorted(set(submission_ids)))
    if message_types is not None:
        where.append("message_type IN (SELECT unnest(?::VARCHAR[]))")
        params.append(sorted(set(message_types)))
    condition = f" WHERE {' AND '.join(where)}" if where else ""
    with _reading(home) as con:
        query = f"SELECT {selected} FROM ledger{condition} ORDER BY submission_id"
        table = con.sql(query, params=params).to_arrow_table()
    # nullable integers straight from Arrow: through float64 a large lopenr would not survive
    nullable = {pa.int64(): pd.Int64Dtype(), pa.int32(): pd.Int64Dtype()}
    frame = table.to_pandas(types_mapper=nullable.get)
    for name in LEDGER_COLUMNS:
        if name not in _INTS:
            frame[name] = frame[name].astype(object).where(frame[name].notna(), None)
    return frame.astype({"size": "int64", "episodes": "int64", "patients": "int64"})


def record_count(home: Home) -> int:
    """How many records the ledger holds (records are never removed: a copy of it with as many
    holds the same records)."""
    with _reading(home) as con:
        return con.execute("SELECT count(*) FROM ledger").fetchall()[0][0]


class LedgerLookup:
    """Keyed look-ups in the ledger for one intake, on one read-only connection held between
    intake's commits: a few milliseconds per file, where reading every record of the year
    grows to minutes by December (~13 million records).

    DuckDB lets a process open a file read-only or read-write, not both: :meth:`close` before
    writing to the state (the next look-up opens it again).
    """

    def __init__(self, home: Home) -> None:
        self.home = home
        self._con: duckdb.DuckDBPyConnection | None = None
        self._opened: ExitStack | None = None

    def _connection(self) -> duckdb.DuckDBPyConnection:
        if self._con is None:
            self._opened = ExitStack()
            self._con = self._opened.enter_context(_reading(self.home))
        return self._con

    def close(self) -> None:
        """Let go of the state file (idempotent)."""
        if self._opened is not None:
            self._opened.close()
        self._con, self._opened = None, None

    def record(self, submission_id: str) -> LedgerRecord | None:
        """The record of one submission, or None (the primary key's index)."""
        rows = (
            self._connection()
            .execute(f"SELECT {_SELECT} FROM ledger WHERE submission_id = ?", [submission_id])
            .fetchall()
        )
        return _from_row(rows[0]) if rows else None

    def accepted(self, unit: str, message_type: str, year: int) -> list[LedgerRecord]:
        """The accepted records of one unit, message type and year (the ``ledger_unit`` index),
        in submission id order."""
        rows = (
            self._connection()
            .execute(
                f"SELECT {_SELECT} FROM ledger WHERE unit = ? AND message_type = ? AND year = ? "
                "AND status = ? ORDER BY submission_id",
                [unit, message_type, year, ACCEPTED],
            )
            .fetchall()
        )
        return [_from_row(row) for row in rows]

    def accepted_of_types(self, message_types: Iterable[str]) -> list[LedgerRecord]:
        """Every accepted record of these message types, in submission id order."""
        rows = (
            self._connection()
            .execute(
                f"SELECT {_SELECT} FROM ledger WHERE status = ? AND message_type IN "
                "(SELECT unnest(?::VARCHAR[])) ORDER BY submission_id",
                [ACCEPTED, sorted(set(message_types))],
            )
            .fetchall()
        )
        return [_from_row(row) for row in rows]


NEWEST = ["lopenr", "extracted", "submission_id"]
"""The order of a unit's submissions of one type and year: the last is the newest."""


def current_submissions(ledger: pd.DataFrame) -> pd.DataFrame:
    """The current accepted production submission per unit, message type and year (of the
    ord and ide, a period's production reads the current delivery:
    :func:`npr_pipeline.store.lake.current_for_period`)."""
    accepted = ledger[ledger["status"] == "accepted"].copy()
    if accepted.empty:
        return accepted
    ordered = accepted.sort_values(NEWEST)
    return ordered.groupby(["unit", "message_type", "year"], as_index=False).tail(1)


# --- the one-time import of the JSON ledger ------------------------------------------------


def _import_json(con: duckdb.DuckDBPyConnection, home: Home) -> dict[str, int]:
    """Insert the JSON records and failed markers (a record wins over a marker); idempotent."""
    records = _json_records(sorted(home.ledger.glob("*.json")))
    committed = {r.submission_id for r in records}
    failed = [
        r
        for r in _json_records(sorted((home.ledger / "failed").glob("*.json")))
        if r.submission_id not in committed
    ]
    for table, rows in (("ledger", records), ("failed", failed)):
        if rows:
            con.register("_import", _arrow([_row(r) for r in rows]))
            con.execute(f"INSERT INTO {table} BY NAME SELECT * FROM _import ON CONFLICT DO NOTHING")
            con.unregister("_import")
    claimable = (
        "status = ? AND unit IS NOT NULL AND message_type IS NOT NULL AND year IS NOT NULL "
        "AND lopenr IS NOT NULL"
    )
    claims = con.execute(f"SELECT count(*) FROM ledger WHERE {claimable}", [ACCEPTED]).fetchall()
    # the first received keeps a lopenr that two old accepted records share
    kept = con.execute(
        "INSERT INTO lopenr_claims SELECT unit, message_type, year, lopenr, submission_id "
        f"FROM ledger WHERE {claimable} QUALIFY row_number() OVER (PARTITION BY unit, "
        "message_type, year, lopenr ORDER BY received, submission_id) = 1 "
        "ON CONFLICT DO NOTHING",
        [ACCEPTED],
    ).fetchall()[0][0]
    return {
        "records": len(records),
        "failed": len(failed),
        "claims": kept,
        "unclaimed": claims[0][0] - kept,
    }


def _arrow(rows: list[tuple[object, ...]]) -> pa.Table:
    return pa.table({name: [row[i] for row in rows] for i, name in enumerate(_ROW)}, schema=_ARROW)


def _json_records(paths: list[Path]) -> list[LedgerRecord]:
    """The JSON records that parse, each made to fit the table (see the module doc)."""
    found = []
    for path in paths:
        try:
            doc = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue  # a file that is not a record (a torn write from long ago)
        if isinstance(doc, dict) and isinstance(doc.get("submission_id"), str):
            found.append(_fit(doc))
    return found


def _fit(doc: dict[str, object]) -> LedgerRecord:
    """A record as written before records were typed, with every field made valid."""
    values: dict[str, object] = {}
    for f in fields(LedgerRecord):
        value = doc.get(f.name)
        if f.name in _INTS:
            fits = type(value) is int and 0 <= value <= (
                YEAR_MAX if f.name == "year" else INT64_MAX
            )
            value = value if fits else (None if f.name in _NULLABLE_INTS else 0)
        elif f.name in _DATES:
            value = value if _date(value) is not None else None
        elif f.name == "reasons":
            value = [r for r in value if isinstance(r, dict)] if isinstance(value, list) else []
        elif value is not None and not isinstance(value, str):
            value = str(value)
        if value is None and f.name in _REQUIRED_TEXTS:
            value = ""
        values[f.name] = value
    record = LedgerRecord(**values)
    try:
        json.dumps(record.reasons, allow_nan=False)
    except (TypeError, ValueError):
        record.reasons = []
    return record
