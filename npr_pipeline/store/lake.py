"""The monthly lake: the tables of the monthly route (NPR_ORD, NPR_IDE) as Delta tables.

Their columns and types (:data:`TABLES`) live here, at the bottom of the core, so quality,
production and research read them without importing intake. One Delta table per table under
``HOME/lake/monthly/<table>/``; identities (they hold fødselsnummer) under
``HOME/vault/monthly/idents/``. Partitioned by ``batch``, the intake batch that committed the
rows (:mod:`.batches`), so a reader selects committed batches from the log without opening a
file. Every part file holds exactly one submission (``batch=N/<submission_id>.parquet``, the
file intake's worker wrote, moved, never rewritten), with ``submission_id``, ``unit`` and
``year`` in the file and their min/max in the log: a reader picks a submission's file from the
log alone. The lake is therefore never compacted.

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

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from deltalake import CommitProperties, DeltaTable, Schema, Transaction
from deltalake.transaction import AddAction, create_table_with_add_actions

from npr_pipeline.home import Home
from npr_pipeline.periods import Period
from npr_pipeline.store import state
from npr_pipeline.store.batches import committed_batches
from npr_pipeline.store.events import APP_ID
from npr_pipeline.store.ledger import _prepare, current_submissions

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
# (``tables.write_part``), and DuckDB reads them as the same TIMESTAMP it read from the
# seconds-typed files before.
PART_TIMESTAMP = pa.timestamp("us")
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
    """One submission's rows of one table, staged by intake's worker, waiting for its batch."""

    table: str
    path: Path
    submission_id: str
    unit: str
    year: int
    rows: int


def _stats(part: Part) -> str:
    """Delta file statistics: the row count and the key columns' (constant) values, so a
    reader prunes by submission, unit or year from the log alone."""
    keys = {"submission_id": part.submission_id, "unit": part.unit, "year": part.year}
    return json.dumps(
        {
            "numRecords": part.rows,
            "minValues": keys,
            "maxValues": keys,
            "nullCount": dict.fromkeys(keys, 0),
        }
    )


def part_path(home: Home, table: str, batch: int, submission_id: str) -> Path:
    """Where a published part file lives: its table's folder of the batch."""
    return table_path(home, table) / f"{BATCH}={batch}" / f"{submission_id}.parquet"


def _add(home: Home, batch: int, part: Part) -> AddAction:
    """Move the part into the batch's folder (once: a retried publish finds it there)."""
    target = part_path(home, part.table, batch, part.submission_id)
    relative = target.relative_to(table_path(home, part.table)).as_posix()
    if part.path != target and part.path.exists():
        target.parent.mkdir(parents=True, exist_ok=True)
        os.replace(part.path, target)
    info = target.stat()
    return AddAction(
        relative, info.st_size, {BATCH: str(batch)}, info.st_mtime_ns // 1_000_000, True,
        _stats(part),
    )  # fmt: skip


def publish(home: Home, batch: int, parts: Iterable[Part]) -> dict[str, int]:
    """Commit one batch's parts: moved into each table's ``batch=N/`` folder, one Delta commit
    per table carrying ``(npr-intake, batch)``; a table already holding the batch (a retried
    publish) is skipped. Returns each table's version after it: the batch row records them."""
    by_table: dict[str, list[Part]] = {}
    for part in parts:
        by_table.setdefault(part.table, []).append(part)
    versions: dict[str, int] = {}
    for table, members in sorted(by_table.items()):
        root = table_path(home, table)
        props = CommitProperties(app_transactions=[Transaction(APP_ID, batch)])
        if not root.joinpath("_delta_log").is_dir():
            actions = [_add(home, batch, p) for p in members]
            create_table_with_add_actions(
                str(root), Schema.from_arrow(delta_schema(table)), actions, mode="error",
                partition_by=[BATCH], commit_properties=props,
            )  # fmt: skip
            versions[table] = 0
            continue
        delta = DeltaTable(root)
        if (delta.transaction_version(APP_ID) or 0) < batch:
            actions = [_add(home, batch, p) for p in members]
            delta.create_write_transaction(
                actions, mode="append", schema=delta_schema(table), partition_by=[BATCH],
                commit_properties=props,
            )  # fmt: skip
            delta.update_incremental()
        versions[table] = delta.version()
    return versions


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
            logged = {Path(p) for p in DeltaTable(root).file_uris()}
        for folder in folders:
            for path in folder.iterdir():
                if path not in logged:
                    path.unlink()
                    removed += 1
            if not any(folder.iterdir()):
                folder.rmdir()
    return removed


def maintain(home: Home, tables: Iterable[str], today: datetime | None = None) -> None:
    """After an intake that committed monthly batches: a checkpoint for each of ``tables``
    whose log grew since its last one (readers then replay a few log entries, not all), and,
    at most once a day, a vacuum of every monthly table keeping ``VACUUM_RETENTION_DAYS`` of
    unreferenced files (recent snapshots still time-travel), recorded in the state's ``meta``."""
    for table in sorted(set(tables)):
        root = table_path(home, table)
        delta = DeltaTable(root)
        last = root / "_delta_log" / "_last_checkpoint"
        checkpointed = json.loads(last.read_text())["version"] if last.is_file() else -1
        if delta.version() > checkpointed:
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
    committed batches read once: opening ``state.duckdb`` for them costs more than reading a
    table's log, and a quality pass or a period's input reads eight tables."""
    logged = [t for t in wanted if table_path(home, t).joinpath("_delta_log").is_dir()]
    committed = committed_batches(home, as_of_batch).column(BATCH) if logged else None
    return {t: _chosen(home, t, wanted[t], committed) if t in logged else {} for t in wanted}


def _chosen(
    home: Home, table: str, submission_ids: Iterable[str] | None, committed: pa.ChunkedArray
) -> dict[str, Path]:
    """The part files of ``table``'s log in the ``committed`` batches, latest batch last."""
    root = table_path(home, table)
    adds = pa.table(DeltaTable(root).get_add_actions(flatten=True))
    batches = adds.column(f"partition.{BATCH}")
    sids = adds.column("min.submission_id")
    keep = pc.is_in(batches, value_set=committed)
    if submission_ids is not None:
        wanted = pa.array(list(submission_ids), pa.string())
        keep = pc.and_(keep, pc.is_in(sids, value_set=wanted))
    chosen = adds.filter(keep).sort_by(f"partition.{BATCH}")
    return {
        sid: root / path
        for sid, path in zip(
            chosen.column("min.submission_id").to_pylist(),
            chosen.column("path").to_pylist(),
            strict=True,
        )
    }


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
    """
    columns = ["unit", "message_type", "submission_id", "lopenr", "period_to", "episodes"]
    # only the columns the choice and the answer read: at 65,000 units (~400,000 records a
    # year) sorting the whole ledger's twenty columns cost seconds (docs/benchmarks.md)
    needed = [*columns, "status", "extracted", "year"]
    current = current_submissions(ledger.loc[ledger["year"] == period.year, needed])
    if current.empty:  # typed, so that selecting rows by ``covers`` works on it too
        return pd.DataFrame(columns=columns).assign(covers=pd.Series(dtype=bool))
    current = current[columns].assign(covers=current["period_to"] >= period.end.isoformat())
    return current.sort_values(["unit", "message_type"]).reset_index(drop=True)


def parquet_source(paths: list[Path], union_by_name: bool = False) -> str:
    """A DuckDB ``read_parquet`` over explicit files (part files chosen by :func:`part_files`,
    or quality results).

    Hive partitioning is off: the ``batch=`` folders are the log's business, and the files
    carry their own typed columns.
    """
    listing = ", ".join("'" + str(p).replace("'", "''") + "'" for p in paths)
    options = ", union_by_name = true" if union_by_name else ""
    return f"read_parquet([{listing}], hive_partitioning = false{options})"
