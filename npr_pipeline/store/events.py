"""The daily route's event tables: every event of every accepted daily file, as Delta tables;
and the same way the report types' tables (KPP, the forløpsmelding, XPR_VTK, NPR-melding-TSB:
rows of whole reports, see :mod:`npr_pipeline.reports`), under one code path.

One Delta table per mapping table (``npr_pipeline/messages/*/*/mapping.yaml``) under
``HOME/lake/daily/<table>/``; a table the mapping marks ``vault`` (it holds fødselsnummer) under
``HOME/vault/daily/<table>/`` instead. Partitioned by ``year`` only: units are data. Columns:
``batch``, ``submission_id``, ``unit``, ``year``, ``lopenr``, the mapping's columns (inherited,
then own), ``line``. Events are never updated or dropped: the fold
(:mod:`.consolidated`) decides what counts.

Each batch appends each table once, with the app transaction ``(npr-intake, batch)`` recorded
in the same Delta commit, so retrying an append after a failure skips the tables that already
hold the batch. Rows are visible only through the committed batches (:mod:`.batches`). Every
``CHECKPOINT_EVERY`` commits of a table get a checkpoint; after an intake, :func:`compact`
merges the batches' small files and writes one.

Opening a Delta table replays its log (from the last checkpoint); a batch reads and appends
each table a few times, so an intake opens every table once inside :func:`reused_tables` and
later only reads the log entries written since (``update_incremental``): each use sees every
commit, its own batch's and any other writer's.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path

import pyarrow as pa
import pyarrow.dataset as ds
from deltalake import CommitProperties, DeltaTable, Transaction, write_deltalake

from npr_pipeline.home import Home
from npr_pipeline.messages import COLUMN_TYPES, LINE_COLUMN, TableSpec, all_types
from npr_pipeline.store.delta_log import ahead_of_checkpoint

APP_ID = "npr-intake"
# A long intake appends each table once per batch, and every open replays the log since the
# last checkpoint (written by :func:`compact` at the end of an intake): a checkpoint every this
# many commits keeps that replay, and the memory it leaves behind, bounded within a run
# (docs/benchmarks.md, "Left: a slower growth").
CHECKPOINT_EVERY = 10
DAILY = "daily"
# What intake knows of a file beside its content, handed to read_typed as context (strings).
CONTEXT = ("submission_id", "unit", "year", "lopenr")
_CONTEXT_TYPES = {"submission_id": pa.string(), "unit": pa.string(), "year": pa.int32(),
                  "lopenr": pa.int64()}  # fmt: skip


@functools.cache
def table_specs() -> dict[str, TableSpec]:
    """Every event table by name (of the types whose records are events, not the report types
    such as KPP); a later version of a message type replaces an earlier's."""
    return {spec.name: spec for mtype in all_types() if mtype.is_event for spec in mtype.tables}


@functools.cache
def stored_specs() -> dict[str, TableSpec]:
    """Every table intake appends per batch: the event tables and the report types' tables
    (whose rows are whole reports; what is current is decided by the lopenr, not by a fold)."""
    return {
        spec.name: spec
        for mtype in all_types()
        if mtype.is_event or mtype.is_report
        for spec in mtype.tables
    }


_HANDLES: ContextVar[dict[Path, DeltaTable] | None] = ContextVar("_HANDLES", default=None)


@contextmanager
def reused_tables() -> Iterator[None]:
    """Within the block each table is opened once and then brought up to date incrementally,
    not opened (its whole log replayed) at every use: an intake's batches use each table ~2
    times per table per batch."""
    token = _HANDLES.set({})
    try:
        yield
    finally:
        _HANDLES.reset(token)


def open_table(path: Path) -> DeltaTable:
    """The table at ``path`` as of its latest commit: the block's handle, updated, inside
    :func:`reused_tables`; a fresh open outside."""
    handles = _HANDLES.get()
    if handles is None:
        return DeltaTable(path)
    table = handles.get(path)
    if table is None:
        table = handles[path] = DeltaTable(path)
    else:
        table.update_incremental()
    return table


def event_schema(spec: TableSpec) -> pa.Schema:
    """The stored columns of one event table."""
    fields = [pa.field("batch", pa.int64())]
    fields += [pa.field(name, dtype) for name, dtype in _CONTEXT_TYPES.items()]
    fields += [pa.field(name, COLUMN_TYPES[kind]) for name, kind in spec.all_columns()]
    return pa.schema([*fields, pa.field(LINE_COLUMN, pa.int32())])


def table_path(home: Home, table: str) -> Path:
    """Where an event table lives: the vault for tables that hold fødselsnummer."""
    root = home.vault if stored_specs()[table].vault else home.lake
    return root / DAILY / table


def stored(spec: TableSpec, batch: int, rows: pa.Table) -> pa.Table:
    """The reader's rows (context columns as strings) in the stored schema, tagged with the
    batch; columns the schema does not name are left out."""
    schema = event_schema(spec)
    columns = [pa.repeat(pa.scalar(batch, pa.int64()), rows.num_rows)]
    columns += [rows.column(f.name).cast(f.type) for f in list(schema)[1:]]
    return pa.Table.from_arrays(columns, schema=schema)


def append_events(home: Home, batch: int, tables: dict[str, pa.Table]) -> dict[str, int]:
    """Append one batch's rows, one Delta commit per table carrying ``(npr-intake, batch)``;
    a table already holding the batch (a retried append) is skipped. Returns each table's
    Delta version after the append: the batch row records them for audit."""
    versions: dict[str, int] = {}
    for name, rows in sorted(tables.items()):
        if rows.num_rows == 0:
            continue
        path = table_path(home, name)
        target: Path | DeltaTable = path
        if path.joinpath("_delta_log").is_dir():
            target = open_table(path)
            if (target.transaction_version(APP_ID) or 0) >= batch:
                versions[name] = target.version()
                continue
        path.parent.mkdir(parents=True, exist_ok=True)
        write_deltalake(  # through the handle, which then holds the new version
            target,
            stored(stored_specs()[name], batch, rows),
            mode="append",
            partition_by=["year"],
            commit_properties=CommitProperties(app_transactions=[Transaction(APP_ID, batch)]),
        )
        table = open_table(path)
        versions[name] = table.version()
        if versions[name] % CHECKPOINT_EVERY == 0:
            table.create_checkpoint()
    return versions


def events_dataset(home: Home, table: str) -> ds.Dataset:
    """All stored rows of an event table as a pyarrow dataset (the reader beside DuckDB; an
    empty one when the table was never written). Callers keep only committed batches."""
    path = table_path(home, table)
    if not path.joinpath("_delta_log").is_dir():
        return ds.dataset(event_schema(stored_specs()[table]).empty_table())
    return open_table(path).to_pyarrow_dataset()


def uncompacted(home: Home) -> bool:
    """Whether an event table was appended to since its last :func:`compact` (which ends each
    table at a checkpoint): an intake killed after its last daily commit, whose rerun commits
    no daily batch. One case goes unseen: an append that itself took a periodic checkpoint
    (every ``CHECKPOINT_EVERY``-th version) as the kill's last commit; the next intake that
    commits a daily batch compacts it. The rows are the same either way, only more files."""
    return any(
        ahead_of_checkpoint(table_path(home, name) / "_delta_log") for name in stored_specs()
    )


def compact(home: Home) -> dict[str, int]:
    """Merge each event table's small files (one per table and batch) and write a checkpoint,
    so readers open few files and the log is replayed from the checkpoint. Rows and their batch
    numbers do not change (history lives in the data); the replaced files stay for readers of
    older versions until a vacuum. Returns the number of files each table has now."""
    files: dict[str, int] = {}
    for name in sorted(stored_specs()):
        path = table_path(home, name)
        if not path.joinpath("_delta_log").is_dir():
            continue
        table = open_table(path)
        table.optimize.compact()
        table.create_checkpoint()
        files[name] = len(open_table(path).file_uris())
    return files
