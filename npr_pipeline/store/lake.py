"""The monthly lake: the tables of the monthly route (NPR_ORD, NPR_IDE) as Delta tables.

Their columns and types (:data:`TABLES`) live here, at the bottom of the core, so quality,
production and research read them without importing intake. One Delta table per table under
``HOME/lake/monthly/<table>/``; identities (they hold fødselsnummer) under
``HOME/vault/monthly/idents/``. Partitioned by ``batch``, the intake batch that committed the
rows (:mod:`.batches`), so a reader selects committed batches from the log without opening a
file. A part file holds one submission (``batch=N/<submission_id>.parquet``: a large file's,
or any part of a lake from before chunks) or a chunk of small files' submissions
(``batch=N/chunk-<first member>.parquet``, its members in ``state.duckdb``'s ``lake_parts``),
the file intake's worker wrote, moved; with ``submission_id``, ``unit`` and ``year`` in the
file and their min/max in the log. A reader picks a submission's file by the log and the
members (:func:`part_files`) and reads only its rows (:func:`rows_source`); the only rewrite
is of a staged chunk's part that held a file refused at its commit (:func:`publish`). The lake
is never compacted (docs/decisions/storage.md, "One part per table per chunk").

The protocol of docs/decisions/storage.md: take a batch number, move the batch's files into
``batch=N/`` and commit them per table with the app transaction ``(npr-intake, N)``; the caller
then commits the ledger rows and the batch row in one DuckDB transaction. A kill before the
Delta commit leaves files outside the log (:func:`sweep` removes them); a kill after it leaves
a batch never marked committed, which no reader selects. Which submission is current is the
ledger's choice (:func:`current_for_period`); a delivery names the lake's table versions
(:func:`versions`), and its submissions' rows never change.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from deltalake import CommitProperties, DeltaTable, Schema, Transaction
from deltalake.transaction import AddAction, create_table_with_add_actions

from npr_pipeline import duck
from npr_pipeline.home import Home
from npr_pipeline.periods import Period
from npr_pipeline.store import state
from npr_pipeline.store.batches import committed_batches, committed_in, take_batch
from npr_pipeline.store.delta_log import ahead_of_checkpoint, checkpointed
from npr_pipeline.store.events import APP_ID, open_table
from npr_pipeline.store.ledger import NEWEST, _prepare, current_submissions

S, D, TS, INT = pa.string(), pa.date32(), pa.timestamp("s"), pa.int32()

# Every table starts with submission_id, unit (the sender's RESH id) and year.
KEYS = (("submission_id", S), ("unit", S), ("year", INT))

TABLES: dict[str, tuple[tuple[str, pa.DataType], ...]] = {
    "patients": (
        ("pasientNr", S),
        ("kjonn", S),
        ("fodselsar", INT),
        ("komNrHjem", S),
        ("line", INT),
    ),
    "departments": (
        ("reshID", S),
        ("navn", S),
        ("sektor", S),
        ("isfRefusjon", S),
        ("nace", S),
        ("enhetstype", S),
        ("avdeling", S),
    ),
    "episodes": (
        ("pasientNr", S),
        ("episodeID", S),
        ("reshID", S),
        ("fagomrade", S),
        ("omsorgsniva", S),
        ("innmateHast", S),
        ("kontaktType", S),
        ("debitor", S),
        ("komNrHjem", S),
        ("innDatoTid", TS),
        ("utDatoTid", TS),
        ("henvisningsperiodeID", S),
        ("drg", S),
        ("drgKilde", S),
        ("line", INT),
    ),
    "diagnoses": (
        ("pasientNr", S),
        ("episodeID", S),
        ("tilstNr", INT),
        ("kodeNr", S),
        ("kodeverk", S),
    ),
    "procedures": (
        ("pasientNr", S),
        ("episodeID", S),
        ("seq", INT),
        ("kodeNr", S),
        ("kodeverk", S),
        ("dato", D),
    ),
    "referrals": (
        ("pasientNr", S),
        ("henvisningsperiodeID", S),
        ("reshID", S),
        ("fagomrade", S),
        ("mottattDato", D),
        ("ansiennitetsdato", D),
        ("vurderingsdato", D),
        ("fristStartHelsehjelp", D),
        ("tjenestestart", D),
        ("avviklingsdato", D),
        ("avviklingskode", S),
        ("prioritet", S),
        ("line", INT),
    ),
    "postponements": (
        ("pasientNr", S),
        ("henvisningsperiodeID", S),
        ("utsettelseskode", S),
        ("utsettelsesdato", D),
        ("utsettelseSluttdato", D),
    ),
    "idents": (("pid", S), ("fid", S), ("fidType", S), ("line", INT)),
}
ORD_TABLES = ("patients", "departments", "episodes", "diagnoses", "procedures", "referrals",
              "postponements")  # fmt: skip
IDE_TABLES = ("idents",)

MONTHLY = "monthly"
BATCH = "batch"
# Delta stores timestamps in microseconds; the part files are written so
# (:func:`write_part`), and DuckDB reads them as the same TIMESTAMP it read from the
# seconds-typed files before.
PART_TIMESTAMP = pa.timestamp("us")
FLUSH_ROWS = 100_000
# The Parquet options of a part file: see :func:`write_part` for why each.
LEAN: dict[str, object] = {
    "compression": "zstd",
    "use_dictionary": False,
    "write_statistics": [name for name, _ in KEYS],
    "store_schema": False,
}
# The buffer between a part's Parquet writer and its file (:func:`write_part`): a small part
# in one write, a large one in writes of this size.
SINK_BUFFER = 1 << 20
# Files a vacuum may delete are older than this: recent delivery snapshots still time-travel.
VACUUM_RETENTION_DAYS = 7
_VACUUMED = "monthly_lake_vacuumed"


def schema_of(table: str) -> pa.Schema:
    """The columns of a lake table as its readers see them (and the daily state mirrors)."""
    return pa.schema([pa.field(n, t) for n, t in KEYS + TABLES[table]])


def part_schema(table: str) -> pa.Schema:
    """The columns of a part file as written: timestamps in Delta's microseconds."""
    return pa.schema(
        [pa.field(n, PART_TIMESTAMP if t == TS else t) for n, t in KEYS + TABLES[table]]
    )


def delta_schema(table: str) -> pa.Schema:
    """The Delta table's schema: the part file's columns and the ``batch`` partition."""
    return part_schema(table).append(pa.field(BATCH, pa.int64()))


def table_path(home: Home, table: str) -> Path:
    """Where a monthly table lives: the vault for identities, the lake for the rest."""
    return (home.vault if table in IDE_TABLES else home.lake) / MONTHLY / table


# -- writing ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Part:
    """One submission's rows of one table, staged by intake's worker, waiting for its batch.

    ``members`` names every submission of the file at ``path``, in its rows' order, when the
    file is a chunk's (several small files' rows in one part, :mod:`npr_pipeline.intake.run`);
    empty when the file holds this submission alone."""

    table: str
    path: Path
    submission_id: str
    unit: str
    year: int
    rows: int
    members: tuple[str, ...] = ()

    @property
    def name(self) -> str:
        """The file's name in its batch folder: the submission's id, or for a chunk's part
        ``chunk-`` and its first member's (unique in the batch: a submission is in one)."""
        return f"{CHUNK}{self.members[0]}" if self.members else self.submission_id


# A part whose name starts so may hold several submissions: which, says ``lake_parts``.
CHUNK = "chunk-"
# In state.duckdb: the members of every chunk's part, by batch and part name. A range of
# submission ids in the log prunes but is not membership; the batch keys the rows, so an
# uncommitted batch's are never read, like its files.
_MEMBERS_DDL = """CREATE TABLE IF NOT EXISTS lake_parts (
    batch BIGINT NOT NULL, part VARCHAR NOT NULL, submission_id VARCHAR NOT NULL)"""


def _prepare_members(con: duckdb.DuckDBPyConnection, home: Home) -> None:
    _prepare(con, home)
    con.execute(_MEMBERS_DDL)


def write_part(path: Path, frame: pa.Table) -> int:
    """Write one part file (its folder made by the caller) in one call, in row groups of
    ``FLUSH_ROWS``; returns the number of rows. The rows are one submission's, or a chunk's
    small submissions' (one part per table and chunk, :mod:`npr_pipeline.intake.run`).

    One ``write_table`` per table and file: the native pass hands every column over whole, so
    a writer kept open for a loop of row groups only added its fixed costs (seven tables per
    ord file, ~4,000 files a national month, median 16 kB). On such small files the write's
    fixed costs are the write, so it is kept lean (:data:`LEAN`): no Arrow schema in the
    footer (the Parquet types read back as the same Arrow types), statistics only on the key
    columns (a reader prunes by submission, unit or year; no reader prunes by another column),
    no dictionary pages, and a native file handle instead of a path pyarrow resolves to a
    filesystem three times. 5.1 -> 3.7 ms of CPU per small ord file (docs/benchmarks.md,
    "Session 9"). The handle is buffered (:data:`SINK_BUFFER`): the Parquet writer writes each
    page header, page and footer piece apart and asks the position after each, two system
    calls apiece on a bare file (63 for a one-row episodes part); the bytes written are the
    same (docs/benchmarks.md, session 12).
    """
    with pa.OSFile(str(path), "wb") as raw, pa.BufferedOutputStream(raw, SINK_BUFFER) as sink:
        pq.write_table(frame, sink, row_group_size=FLUSH_ROWS, **LEAN)
    return frame.num_rows


def _stats(parts: list[Part]) -> str:
    """Delta file statistics: the row count and the key columns' min/max (constant in a
    submission's part), so a reader prunes by submission, unit or year from the log alone."""
    keys = {
        "submission_id": [p.submission_id for p in parts],
        "unit": [p.unit for p in parts],
        "year": [p.year for p in parts],
    }
    return json.dumps(
        {
            "numRecords": sum(p.rows for p in parts),
            "minValues": {k: min(v) for k, v in keys.items()},
            "maxValues": {k: max(v) for k, v in keys.items()},
            "nullCount": dict.fromkeys(keys, 0),
        }
    )


def batch_folder(home: Home, table: str, batch: int) -> Path:
    """A table's folder of one batch: :func:`publish` moves the batch's part files there, each
    named by its part (``<Part.name>.parquet``)."""
    return table_path(home, table) / f"{BATCH}={batch}"


def _add(folder: Path, batch: int, parts: list[Part]) -> AddAction:
    """Move one file's parts into the batch's ``folder`` (made by the caller; once: a retried
    publish finds it there); a chunk's part first loses the rows of members not among
    ``parts`` (files refused at their commit: their rows never reach the lake)."""
    first = parts[0]
    relative = f"{folder.name}/{first.name}.parquet"  # the log's path: relative to the table
    target = folder / f"{first.name}.parquet"
    if first.path != target and first.path.exists():
        if len(parts) < len(first.members):
            _keep_only(first.path, [p.submission_id for p in parts])
        os.replace(first.path, target)
    info = target.stat()
    return AddAction(
        relative, info.st_size, {BATCH: str(batch)}, info.st_mtime_ns // 1_000_000, True,
        _stats(parts),
    )  # fmt: skip


def _keep_only(path: Path, submission_ids: list[str]) -> None:
    """Rewrite a staged chunk's part with only these submissions' rows (atomically: a kill
    leaves the staged file whole, and the rerun reads its files again anyway)."""
    frame = pq.read_table(path)
    kept = frame.filter(pc.is_in(frame.column("submission_id"), pa.array(submission_ids)))
    tmp = path.with_name(f".{path.name}.tmp")
    write_part(tmp, kept)
    os.replace(tmp, path)


def publish(home: Home, batch: int, parts: Iterable[Part]) -> dict[str, int]:
    """Commit one batch's parts: moved into each table's ``batch=N/`` folder, one Delta commit
    per table carrying ``(npr-intake, batch)``; a table already holding the batch (a retried
    publish) is skipped. The members of chunks' parts are in ``lake_parts`` already
    (:func:`begin`). Returns each table's version after it: the batch row records them.

    Inside intake's :func:`~npr_pipeline.store.events.reused_tables` each table is opened once
    per intake and brought up to date per batch: opening a table replays its log from the last
    checkpoint, 8 tables for every batch of 200 files (docs/benchmarks.md, "Session 11")."""
    by_table: dict[str, list[list[Part]]] = {}
    for members in _by_file(parts).values():
        by_table.setdefault(members[0].table, []).append(members)
    versions: dict[str, int] = {}
    for table, files in sorted(by_table.items()):
        root = table_path(home, table)
        folder = batch_folder(home, table, batch)
        folder.mkdir(parents=True, exist_ok=True)  # once per table, not per file moved
        props = CommitProperties(app_transactions=[Transaction(APP_ID, batch)])
        if not root.joinpath("_delta_log").is_dir():
            actions = [_add(folder, batch, f) for f in files]
            create_table_with_add_actions(
                str(root), Schema.from_arrow(delta_schema(table)), actions, mode="error",
                partition_by=[BATCH], commit_properties=props,
            )  # fmt: skip
            versions[table] = 0
            continue
        delta = open_table(root)  # inside intake's ``reused_tables`` its handle, updated
        if (delta.transaction_version(APP_ID) or 0) < batch:
            actions = [_add(folder, batch, f) for f in files]
            delta.create_write_transaction(
                actions, mode="append", schema=delta_schema(table), partition_by=[BATCH],
                commit_properties=props,
            )  # fmt: skip
            delta.update_incremental()
        versions[table] = delta.version()
    return versions


def begin(home: Home, parts: Iterable[Part]) -> int:
    """Take the batch number for ``parts`` (:func:`~npr_pipeline.store.batches.begin_batch`)
    and record the submissions each chunk's part of them publishes, in one state transaction
    before anything moves (read only once the batch is committed): each opening of the state
    file costs ~25 ms, twice per batch before (docs/benchmarks.md, "Session 11")."""
    rows = sorted({(p.name, p.submission_id) for p in parts if p.members})
    with state.transaction(home, _prepare_members) as con:
        batch = take_batch(con)
        if rows:
            names, sids = zip(*rows, strict=True)
            members = pa.table({"part": pa.array(names, S), "submission_id": pa.array(sids, S)})
            con.register("_members", members)
            con.execute("INSERT INTO lake_parts SELECT ?, part, submission_id FROM _members",
                        [batch])  # fmt: skip
    return batch


def _by_file(parts: Iterable[Part]) -> dict[Path, list[Part]]:
    """The parts grouped by the file that holds them (a chunk's file holds several)."""
    by_file: dict[Path, list[Part]] = {}
    for part in parts:
        by_file.setdefault(part.path, []).append(part)
    return by_file


def sweep(home: Home) -> int:
    """Remove part files a killed intake moved into a batch folder but never committed to the
    log (files of a batch the log holds stay: no reader selects an uncommitted batch). Returns
    how many were removed."""
    committed = set(committed_batches(home).column(BATCH).to_pylist())
    removed = 0
    for table in TABLES:
        root = table_path(home, table)
        folders = [
            f for f in (root.glob(f"{BATCH}=*") if root.is_dir() else ())
            if int(f.name.split("=", 1)[1]) not in committed
        ]  # fmt: skip
        if not folders:
            continue
        logged = set()
        if root.joinpath("_delta_log").is_dir():
            logged = {Path(p) for p in open_table(root).file_uris()}
        for folder in folders:
            for path in folder.iterdir():
                if path not in logged:
                    path.unlink()
                    removed += 1
            if not any(folder.iterdir()):
                folder.rmdir()
    return removed


def unmaintained(home: Home) -> set[str]:
    """The monthly tables whose Delta log is ahead of its last checkpoint: committed to by an
    intake that did not live to :func:`maintain` them (a kill -9 after its last commit; its
    rerun commits nothing to them and would otherwise leave them so). One listing of each
    log folder, no log replayed."""
    return {t for t in TABLES if ahead_of_checkpoint(table_path(home, t) / "_delta_log")}


def maintain(home: Home, tables: Iterable[str], today: datetime | None = None) -> None:
    """After an intake that committed monthly batches: a checkpoint for each of ``tables``
    whose log grew since its last one (readers then replay a few log entries, not all), and,
    at most once a day, a vacuum of every monthly table keeping ``VACUUM_RETENTION_DAYS`` of
    unreferenced files (recent snapshots still time-travel), recorded in the state's ``meta``."""
    for table in sorted(set(tables)):
        root = table_path(home, table)
        delta = open_table(root)
        if delta.version() > checkpointed(root / "_delta_log"):
            delta.create_checkpoint()
    day = (today or datetime.now(UTC)).date().isoformat()
    with state.transaction(home, _prepare) as con:
        done = con.execute("SELECT value FROM meta WHERE key = ?", [_VACUUMED]).fetchall()
        if done and json.loads(done[0][0])["day"] == day:
            return
        deleted = 0
        for table in TABLES:
            root = table_path(home, table)
            if root.joinpath("_delta_log").is_dir():
                deleted += len(
                    DeltaTable(root).vacuum(
                        retention_hours=VACUUM_RETENTION_DAYS * 24, dry_run=False
                    )
                )
        record = json.dumps({"day": day, "deleted": deleted})
        con.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", [_VACUUMED, record])


# -- reading ----------------------------------------------------------------------------------


def part_files(
    home: Home,
    table: str,
    submission_ids: Iterable[str] | None = None,
    as_of_batch: int | None = None,
) -> dict[str, Path]:
    """The part file of each submission (of ``submission_ids``, all when None) in the batches
    committed up to ``as_of_batch``, chosen from the Delta log without opening a data file. A
    submission committed twice (retried after a refused claim) reads its latest batch's copy."""
    return part_files_by_table(home, {table: submission_ids}, as_of_batch)[table]


def part_files_by_table(
    home: Home, wanted: Mapping[str, Iterable[str] | None], as_of_batch: int | None = None
) -> dict[str, dict[str, Path]]:
    """:func:`part_files` of several tables (each with its submission ids, all when None), the
    committed batches and the chunks' members read once: opening ``state.duckdb`` for them
    costs more than reading a table's log, and a quality pass or a period's input reads eight
    tables. Several submissions may share a file (a chunk's part): read them with
    :func:`rows_source`."""
    wanted = {t: None if s is None else list(s) for t, s in wanted.items()}
    logged = [t for t in wanted if table_path(home, t).joinpath("_delta_log").is_dir()]
    if not logged:
        return {t: {} for t in wanted}
    everyone = any(wanted[t] is None for t in logged)
    sids = None if everyone else sorted({s for t in logged for s in wanted[t] or ()})
    committed, members = _committed_and_members(home, as_of_batch, sids)
    return {
        t: _chosen(home, t, wanted[t], committed, members) if t in logged else {} for t in wanted
    }


def _committed_and_members(
    home: Home, as_of_batch: int | None, submission_ids: list[str] | None
) -> tuple[pa.ChunkedArray, dict[tuple[int, str], list[str]]]:
    """The committed batches up to ``as_of_batch``, and the members (of ``submission_ids``,
    all when None) of every chunk's part by batch and part name, from one state reading."""
    limit = as_of_batch if as_of_batch is not None else 2**62
    members: dict[tuple[int, str], list[str]] = {}
    with state.reader(home, _prepare) as con:
        committed = committed_in(con, as_of_batch).column(BATCH)
        if not duck.has_table(con, "lake_parts"):  # before chunks: a part a submission
            return committed, members
        query = "SELECT batch, part, submission_id FROM lake_parts WHERE batch <= ?"
        if submission_ids is not None:
            con.register("_wanted", pa.table({"submission_id": pa.array(submission_ids, S)}))
            query += " AND submission_id IN (SELECT submission_id FROM _wanted)"
        for batch, part, sid in con.execute(query, [limit]).fetchall():
            members.setdefault((batch, part), []).append(sid)
    return committed, members


def _chosen(
    home: Home,
    table: str,
    submission_ids: list[str] | None,
    committed: pa.ChunkedArray,
    members: Mapping[tuple[int, str], list[str]],
) -> dict[str, Path]:
    """The part file of each submission of ``table``'s log in the ``committed`` batches,
    latest batch last: a part named by its submission holds it alone, a chunk's part holds
    its ``members``."""
    root = table_path(home, table)
    adds = pa.table(open_table(root).get_add_actions(flatten=True))
    keep = pc.is_in(adds.column(f"partition.{BATCH}"), value_set=committed)
    if submission_ids is not None:
        wanted = pa.array(submission_ids, pa.string())
        # a chunk's part's range of ids may hold a wanted one: its members decide below
        single = pc.is_in(adds.column("min.submission_id"), value_set=wanted)
        chunk = pc.match_substring(adds.column("path"), f"/{CHUNK}")
        keep = pc.and_(keep, pc.or_(single, chunk))
    chosen = adds.filter(keep).sort_by(f"partition.{BATCH}")
    wanted_set = None if submission_ids is None else set(submission_ids)
    found: dict[str, Path] = {}
    for batch, path, sid in zip(
        chosen.column(f"partition.{BATCH}").to_pylist(),
        chosen.column("path").to_pylist(),
        chosen.column("min.submission_id").to_pylist(),
        strict=True,
    ):
        name = path.rsplit("/", 1)[-1].removesuffix(".parquet")
        held = members.get((int(batch), name), []) if name.startswith(CHUNK) else [sid]
        for member in held:
            if wanted_set is None or member in wanted_set:
                found[member] = root / path
    return found


def rows_of(path: Path, submission_id: str, columns: list[str] | None = None) -> pa.Table:
    """One submission's rows of a part file (``columns``, all when None): a chunk's part holds
    other submissions' too."""
    wanted = None if columns is None else list(dict.fromkeys(["submission_id", *columns]))
    rows = pq.read_table(path, columns=wanted)
    rows = rows.filter(pc.equal(rows.column("submission_id"), submission_id))
    return rows if columns is None else rows.select(columns)


def versions(home: Home) -> dict[str, int]:
    """Each monthly table's Delta version: what a delivery snapshot records for audit."""
    return {
        table: DeltaTable(table_path(home, table)).version()
        for table in TABLES
        if table_path(home, table).joinpath("_delta_log").is_dir()
    }


def current_for_period(ledger: pd.DataFrame, period: Period) -> pd.DataFrame:
    """Per unit and message type: the current submission of the year and whether it covers.

    Current is the newest accepted production submission (by lopenr, then extraction date) of
    the unit, type and data year; it covers the period when its data reach the period's end.
    The ord and ide are chosen as one delivery (:func:`current_deliveries`), so production
    reads the pair the content checks compared.
    """
    columns = ["unit", "message_type", "submission_id", "lopenr", "period_to", "episodes"]
    # only the columns the choice and the answer read: at 65,000 units (~400,000 records a
    # year) sorting the whole ledger's twenty columns cost seconds (docs/benchmarks.md)
    needed = [*columns, "status", "extracted", "year"]
    year = ledger.loc[(ledger["year"] == period.year) & (ledger["status"] == "accepted"), needed]
    if year.empty:  # typed, so that selecting rows by ``covers`` works on it too
        return pd.DataFrame(columns=columns).assign(covers=pd.Series(dtype=bool))
    delivery = year["message_type"].isin(DELIVERY)
    current = pd.concat(
        [
            current_submissions(year.loc[~delivery]),
            current_deliveries(year.loc[delivery].sort_values(NEWEST), period),
        ]
    )
    current = current[columns].assign(covers=current["period_to"] >= period.end.isoformat())
    return current.sort_values(["unit", "message_type"]).reset_index(drop=True)


DELIVERY = ("NPR_ORD", "NPR_IDE")
"""The two messages of one monthly delivery."""


def current_deliveries(ordered: pd.DataFrame, period: Period) -> pd.DataFrame:
    """The ord and ide rows of each unit's current delivery for ``period``, from its accepted
    ord and ide rows of one data year in :data:`NEWEST` order.

    An ord's ide is the newest accepted ide of the same unit and data end (``period_to``): the
    pair intake's content checks compare (``Delivery``, whose marker names the ide). A unit's
    current delivery is its newest ord with an ide whose data reach the period's end; without
    one, its newest ord with that ord's ide if it has one (a half-sent delivery: the gate then
    finds the ide missing), or its newest ide if it sent no ord. The newest ord and the newest
    ide on their own could be two halves of different months (next month's ord sent before its
    ide): production then compared an ord with an ide the checks never saw together, and the
    snapshot's checks found the pair's errors unexcluded and stopped the period (session 14).

    Whole-column operations (a hash look-up of each ord's unit and data end among the ides,
    ``drop_duplicates`` for the newest of a group): 65,000 units' year to date is ~400,000 rows.
    """
    is_ord = (ordered["message_type"] == "NPR_ORD").to_numpy()
    ords, ides = ordered.loc[is_ord], ordered.loc[~is_ord]
    paired = ides.drop_duplicates(["unit", "period_to"], keep="last")
    ide_at = pd.Series(
        pd.MultiIndex.from_arrays([paired["unit"], paired["period_to"]]).get_indexer(
            pd.MultiIndex.from_arrays([ords["unit"], ords["period_to"]])
        ),
        index=ords.index,
    )
    covers = (ords["period_to"] >= period.end.isoformat()).to_numpy()
    complete = ords.loc[(ide_at >= 0).to_numpy() & covers]
    # the last of a unit's rows: its newest complete covering ord, else its newest ord
    chosen = pd.concat([ords, complete]).drop_duplicates("unit", keep="last")
    at = ide_at.loc[chosen.index]
    lone_ides = ides.drop_duplicates("unit", keep="last")
    lone_ides = lone_ides.loc[~lone_ides["unit"].isin(chosen["unit"])]
    return pd.concat([chosen, paired.iloc[at[at >= 0].to_numpy()], lone_ides])


def parquet_source(paths: list[Path], union_by_name: bool = False, filename: bool = False) -> str:
    """A DuckDB ``read_parquet`` over explicit files (part files chosen by :func:`part_files`,
    or quality results), with each row's file in a ``filename`` column if asked.

    Hive partitioning is off: the ``batch=`` folders are the log's business, and the files
    carry their own typed columns.
    """
    listing = ", ".join(_quoted(str(p)) for p in paths)
    options = ", union_by_name = true" if union_by_name else ""
    options += ", filename = true" if filename else ""
    return f"read_parquet([{listing}], hive_partitioning = false{options})"


def rows_source(files: Mapping[str, Path]) -> str:
    """A DuckDB source of exactly the rows of these submissions, each from the part file
    chosen for it (:func:`part_files`), in the files' order.

    A part named by its submission holds it alone: such files are read whole, as before
    chunks. A chunk's part may hold submissions not asked for (or an older copy of one whose
    latest copy is in a later batch), so its rows are kept by (file, submission) pair.
    """
    paths = list(dict.fromkeys(files.values()))
    if all(path.stem == sid for sid, path in files.items()):
        return parquet_source(paths)
    pairs = ", ".join(_quoted(f"{path}|{sid}") for sid, path in files.items())
    listing = ", ".join(_quoted(str(p)) for p in paths)
    return (
        f"(SELECT * EXCLUDE (filename) FROM read_parquet([{listing}], hive_partitioning = false,"
        f" filename = true) WHERE filename || '|' || submission_id IN ({pairs}))"
    )


def _quoted(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"
