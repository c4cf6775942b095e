"""Content validation of deliveries (an ord and its ide): results, findings, XPR_ERR.

Set-based: one DuckDB session checks a whole batch of pending deliveries at once (their lake
files read into tables once), then results and violating records are split per delivery and
written as Parquet under ``HOME/quality``, with an XPR_ERR report per submission (its XML: the
HTML and CSV are rendered on request); batches run side by side in the calling process and
a spawned worker. A delivery is pending while its marker is missing, so a run killed halfway
simply leaves work for the next one; the marker records the ide and the catalogue
(``provenance.catalogue_sha256``) the delivery was checked with, so a delivery is checked again
when its ide arrives and when a rule or the catalogue changes. It also counts the delivery's
violation rows: a delivery without any (most of a month's) writes no violations file, and its
readers follow the marker (:func:`has_violations_file`).

Results rows are written once per batch (``quality/batches/<name>.results.parquet``, every
delivery of the batch, before any marker), and each marker names its batch's file
(``"results"``), in which the delivery's rows are those of its ord submission id
(:func:`results_file`): a file per delivery cost a Parquet writer and a file creation each, ~10 %
of the checks (docs/benchmarks.md, "Session 14"). A delivery checked again points its marker at
a new batch file, so a batch file outlives its markers: :class:`_Sweep` removes the ones no
marker names any more, after the markers, and a journal of the candidates lets the next run
finish what a killed one left. Markers of an older HOME name no file; their results are the
delivery's own ``<ord>.results.parquet`` beside the marker, read as before until the delivery is
checked again (then swept too).
"""

from __future__ import annotations

import hashlib
import json
import multiprocessing
import os
from collections.abc import Callable
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from npr_pipeline import duck
from npr_pipeline.atomic import write_bytes, write_text
from npr_pipeline.feedback.reports import Finding, SubmissionInfo, write_xpr_err
from npr_pipeline.home import Home
from npr_pipeline.processes import die_with_parent
from npr_pipeline.provenance import catalogue_sha256
from npr_pipeline.quality import reference_tables
from npr_pipeline.quality.catalogue import Check, load_catalogue
from npr_pipeline.quality.sql_engine import register_tables, run_checks
from npr_pipeline.registry import current_registry
from npr_pipeline.store.lake import IDE_TABLES, ORD_TABLES, TABLES, part_files_by_table
from npr_pipeline.store.ledger import LedgerRecord

EXAMPLES = 10_000
BATCH = 250
"""Most deliveries per batch: each batch pays for a DuckDB session, the reference tables and
one query per check, so bigger batches are cheaper per delivery."""
BATCH_EPISODES = 100_000
"""Most episodes per batch: a batch's lake rows are held in memory, and cumulative files grow
through the year (a December ord holds twelve months). A checker's peak is ~200 MiB plus ~1 MiB
per 1,000 episodes of its batch: ~390 MiB here, against ~340 at 50,000, for half as many
batches' fixed costs (the rule query's planning, the copy's setup: ~50-100 ms a batch;
docs/benchmarks.md, "Session 13")."""
DELIVERY_COST = 240
"""A delivery's own files (its marker, its XPR_ERR, a violations file when it has any) cost
about what checking this many episodes does: the national April, one checker under cProfile
(session 15, results per batch), ~3.3 ms per delivery against ~14 us per episode."""
WORKERS = 2
"""Processes checking batches side by side (both cores), when there is more than one batch."""
EPISODE_TABLES = ("episodes", "diagnoses", "procedures")


@dataclass(frozen=True)
class Delivery:
    """An ord and, once it has arrived, the ide of the same unit and period.

    Content rules of the ord run as soon as it is accepted; the rules that compare the two
    messages run when the ide is there too (the delivery is then checked again).
    """

    ord: LedgerRecord
    ide: LedgerRecord | None


@dataclass(frozen=True)
class QualityOutcome:
    """Findings of one delivery, for the intake summary."""

    errors: int
    warnings: int


@dataclass(frozen=True)
class Checked:
    """What one run of the content checks wrote: outcome per submission id, and the results
    rows of every delivery (per batch, the tables its results files were cut from), so the
    warehouse can take them without reading the files back."""

    outcomes: dict[str, QualityOutcome]
    results: list[pa.Table]


def results_path(home: Home, ord_record: LedgerRecord, kind: str) -> Path:
    """``quality/year=Y/unit=U/<ord submission id>.<kind>.parquet`` (results or violations)."""
    return quality_file(home, ord_record.year, ord_record.unit, ord_record.submission_id, kind)


def quality_file(home: Home, year: int, unit: str, ord_sid: str, kind: str) -> Path:
    """Where a delivery's quality results or violations are."""
    return home.root / "quality" / f"year={year}" / f"unit={unit}" / f"{ord_sid}.{kind}.parquet"


def batches_folder(home: Home) -> Path:
    """Where the batch results files are (one folder for every year: a batch may span two)."""
    return home.root / "quality" / BATCHES


def results_file(marker_path: Path, marker: dict[str, Any]) -> Path:
    """The results file a delivery's marker (at ``marker_path``) names: its batch's file, in
    which the delivery's rows are those of its ord submission id, or, for a marker written
    before batch files (no ``results``), the delivery's own file beside the marker."""
    named = marker.get("results")
    if named is None:
        return marker_path.with_name(marker_path.name.removesuffix(MARKER) + RESULTS)
    return marker_path.parents[2] / BATCHES / named


@dataclass(frozen=True)
class Pending:
    """Deliveries to check, with the results files their markers name now (paths under
    ``quality/``): a new check points those markers at a new batch file, so :class:`_Sweep`
    journals the old ones, as read here once rather than read again."""

    deliveries: list[Delivery]
    named: list[str]


def not_yet_checked(home: Home, deliveries: list[Delivery]) -> Pending:
    """Deliveries never checked, checked before their ide arrived, or checked with another
    catalogue (a changed rule reaches every delivery already checked)."""
    catalogue = catalogue_sha256()
    return _pending(
        home,
        deliveries,
        lambda delivery, marker: (
            marker is None
            or marker.get("catalogue") != catalogue
            or (delivery.ide is not None and marker["ide_sid"] != delivery.ide.submission_id)
        ),
    )


def check_again(home: Home, deliveries: list[Delivery]) -> Pending:
    """Every one of ``deliveries``, checked or not: to check them all again."""
    return _pending(home, deliveries, lambda delivery, marker: True)


def _pending(
    home: Home, deliveries: list[Delivery], due: Callable[[Delivery, dict | None], bool]
) -> Pending:
    """The deliveries ``due`` by their marker, with the results files those markers name."""
    quality = home.root / "quality"
    todo: list[Delivery] = []
    named: list[str] = []
    for delivery in deliveries:
        path = _marker(home, delivery.ord)
        marker = _read_json(path)
        if due(delivery, marker):
            todo.append(delivery)
            if marker is not None:
                named.append(str(results_file(path, marker).relative_to(quality)))
    return Pending(todo, named)


def read_marker(home: Home, ord_record: LedgerRecord) -> dict[str, Any] | None:
    """What a delivery was last checked with (``ide_sid``, ``catalogue``) and found
    (``violations``: how many rows), or None."""
    return marker_of(home, ord_record.year, ord_record.unit, ord_record.submission_id)


def marker_of(home: Home, year: int, unit: str, ord_sid: str) -> dict[str, Any] | None:
    """:func:`read_marker` by the ord's year, unit and submission id."""
    return _read_json(_marker_path(home, year, unit, ord_sid))


def read_marker_at(path: Path) -> dict[str, Any] | None:
    """The marker at ``path`` (a ``*.results.json`` found by listing ``quality/``), or None."""
    return _read_json(path)


def _read_json(path: Path) -> Any:
    """A marker's (or the sweep journal's) content, or None when there is none."""
    return json.loads(path.read_text(encoding="utf-8")) if path.exists() else None


def has_violations_file(marker: dict[str, Any]) -> bool:
    """Whether a checked delivery (``marker``) has a violations file to read.

    A delivery without violations (most of a month's) writes none: its marker's count is 0,
    and readers take that as an empty table. A marker from before the count (an older HOME)
    has its file, empty or not; so has every marker counting some, and a missing one is damage.
    """
    return marker.get("violations") != 0


def _marker(home: Home, ord_record: LedgerRecord) -> Path:
    """Written last for a delivery: which ide and catalogue it was checked with and how many
    violations it has (the commit mark)."""
    return _marker_path(home, ord_record.year, ord_record.unit, ord_record.submission_id)


def _marker_path(home: Home, year: int, unit: str, ord_sid: str) -> Path:
    return quality_file(home, year, unit, ord_sid, "results").with_suffix(".json")


MARKER = ".results.json"
RESULTS = ".results.parquet"
BATCHES = "batches"
DELIVERIES = b"npr.deliveries"
"""The batch file's metadata key listing its deliveries' markers (paths under ``quality/``):
the only markers that can name the file, read by :class:`_Sweep` before removing it."""


def check_deliveries(home: Home, pending: Pending, allow_synthetic_fnr: bool) -> Checked:
    """Run the catalogue on the pending deliveries (:func:`not_yet_checked`), in batches;
    outcome per ord and ide submission id.

    The deliveries are taken in the order of their ord files' names (then submission ids),
    not the caller's: an intake lists this run's deliveries in commit order, and the rerun of a
    killed intake lists the same ones in the ledger's order, so the batches, their files' names
    (:func:`_batch_name`) and the markers naming them would differ from one clean run's (kill
    -9 campaign, session 18). The names are the inbox's order, which the lake's chunk parts
    follow: a batch copies the few parts its deliveries share. In submission-id order (hashes)
    every batch would copy parts of the whole month (1.8x the rows already in the ledger's key
    order, docs/benchmarks.md "Session 16").

    Batches are independent (each writes only its own deliveries' files), so with more than
    one they run in ``WORKERS`` processes side by side (this one and spawned workers): a third
    of a batch's time is Python and the kernel writing the delivery's files, which threads
    could not overlap (docs/benchmarks.md, "Session 11: content checks").
    """
    deliveries = sorted(pending.deliveries, key=lambda d: (d.ord.file, d.ord.submission_id))
    batches = _batches(deliveries)
    if not batches:  # nothing pending: no Delta log to read, only what a killed run left
        _Sweep.before(home, [], []).after()
        return Checked({}, [])
    located = _located(home, deliveries)
    run = _Run.of(home, allow_synthetic_fnr)
    work = [(batch, _batch_name(run.catalogue, batch), _files(located, batch)) for batch in batches]
    sweep = _Sweep.before(home, pending.named, [name for _, name, _ in work])
    if len(batches) > 1 and WORKERS > 1:
        found = _check_beside_workers(run, work)
    else:
        found = _check_here(run, work, _connection())
    sweep.after()
    outcomes: dict[str, QualityOutcome] = {}
    for batch_outcomes, _ in found:
        outcomes |= batch_outcomes
    return Checked(outcomes, [results for _, results in found])


def _batches(deliveries: list[Delivery]) -> list[list[Delivery]]:
    """Consecutive deliveries, at most ``BATCH`` of them and ``BATCH_EPISODES`` episodes."""
    batches: list[list[Delivery]] = []
    episodes = 0
    for delivery in deliveries:
        if (
            not batches
            or len(batches[-1]) == BATCH
            or episodes + delivery.ord.episodes > BATCH_EPISODES
        ):
            batches.append([])
            episodes = 0
        batches[-1].append(delivery)
        episodes += delivery.ord.episodes
    return batches


@dataclass(frozen=True)
class _Run:
    """What every batch of one run shares, found once per run rather than once per batch (the
    catalogue's hash parses every rule file, the registry is a CSV: ~10 ms a batch)."""

    home: Home
    allow_synthetic_fnr: bool
    catalogue: str  # taken before the checks: a change meanwhile re-checks next time
    names: dict[str, str]  # unit name by RESH id

    @classmethod
    def of(cls, home: Home, allow_synthetic_fnr: bool) -> _Run:
        registry = current_registry(home)
        names = dict(zip(registry["reshID"], registry["name"], strict=True))
        return cls(home, allow_synthetic_fnr, catalogue_sha256(), names)


Work = list[tuple[list[Delivery], str, dict[str, list[Path]]]]
"""Batches with their results file's name and each table's part files."""
Found = tuple[dict[str, QualityOutcome], pa.Table]
"""A batch's outcomes and results rows."""


def _connection(threads: int | None = None) -> duckdb.DuckDBPyConnection:
    """A checking process's DuckDB connection, kept for all its batches (a connection per batch
    cost ~10 % of the checks' CPU on a national month: the session, and the memory of its tables
    given back and taken again every batch), with the reference tables the rules read: they are
    the same for every batch, and creating them again per batch cost ~20 ms each."""
    if threads is None:  # this process's: an attachment to its instance, cheaper to open
        con: duckdb.DuckDBPyConnection | duck.Opened = duck.connect()
    else:
        con = duckdb.connect(config={"threads": threads})
    reference_tables.register(con)
    return con


def _check_here(run: _Run, work: Work, con: duckdb.DuckDBPyConnection) -> list[Found]:
    """Check every batch of ``work`` in this process, in ``con`` (closed at the end)."""
    try:
        return [_check_batch(con, run, *item) for item in work]
    finally:
        con.close()


def _check_beside_workers(run: _Run, work: Work) -> list[Found]:
    """The batches of ``work`` checked by this process and ``WORKERS - 1`` spawned ones side by
    side, the costliest first; results in batch order (the warehouse appends them in that order).

    Every batch is submitted to the pool, and this process takes, in the same order, each one
    it can still cancel there (not yet handed to a worker: the pool hands out one or two ahead),
    so each checker takes the costliest batch left when done with one. A failure on either side
    cancels every batch not yet started.

    This process is one of the checkers rather than waiting for ``WORKERS`` workers: a worker's
    start (spawn, imports, reference tables) costs ~0.75 CPU s, and this process has everything
    imported already (docs/benchmarks.md, "Session 13")."""
    order = _costliest_first([batch for batch, _, _ in work])
    spawn = multiprocessing.get_context("spawn")  # no fork of a process with live threads
    with ProcessPoolExecutor(
        WORKERS - 1,
        mp_context=spawn,
        initializer=_init_worker,
        # one DuckDB thread per checker: the checkers already fill the cores, and two threads
        # each cost ~10 % more CPU per batch for nothing
        initargs=(os.getpid(), 1),
    ) as pool:
        futures = {number: pool.submit(_check_in_worker, run, *work[number]) for number in order}
        try:
            found = _check_cancelled(run, work, futures)
            for number, future in futures.items():
                if number not in found:
                    found[number] = future.result()  # a worker's failure raised here
        except BaseException:
            for future in futures.values():
                future.cancel()
            raise
    return [found[number] for number in range(len(work))]


def _check_cancelled(run: _Run, work: Work, futures: dict[int, Future[Found]]) -> dict[int, Found]:
    """Check here, in ``futures``' order, every batch cancelled in the pool before a worker
    took it."""
    found: dict[int, Found] = {}
    con = _connection(threads=1)
    try:
        for number, future in futures.items():
            if future.cancel():
                found[number] = _check_batch(con, run, *work[number])
    finally:
        con.close()
    return found


def _costliest_first(batches: list[list[Delivery]]) -> list[int]:
    """The batches' numbers, the costliest first: in the batches' order, a costly batch late in
    a national month (one ord of 60,000-80,000 episodes is a batch of its own) left one checker
    on it alone for seconds while the other had nothing left; with the cheapest last, the
    checkers end close together."""
    return sorted(range(len(batches)), key=lambda i: _cost(batches[i]), reverse=True)


def _cost(batch: list[Delivery]) -> int:
    """A batch's checking time in episodes: its ords' episodes, and ``DELIVERY_COST`` a
    delivery for its files (session 11: a third of a batch's time writes a delivery's files)."""
    return sum(d.ord.episodes for d in batch) + DELIVERY_COST * len(batch)


_WORKER_CONNECTION: list[duckdb.DuckDBPyConnection] = []
"""A checking worker's connection (:func:`_connection`)."""


def _init_worker(parent: int, threads: int) -> None:
    """A checking worker: dies with its parent (a killed intake leaves no checker behind) and
    opens the connection its batches share."""
    die_with_parent(parent)
    _WORKER_CONNECTION.append(_connection(threads))


def _check_in_worker(
    run: _Run, batch: list[Delivery], name: str, files: dict[str, list[Path]]
) -> Found:
    return _check_batch(_WORKER_CONNECTION[0], run, batch, name, files)


def _check_batch(
    con: duckdb.DuckDBPyConnection,
    run: _Run,
    batch: list[Delivery],
    name: str,
    files: dict[str, list[Path]],
) -> Found:
    """One batch's checks in ``con`` (:func:`_connection`, shared with the batches before and
    after it: the batch's tables are dropped at its end, so a checker holds no lake rows between
    batches); its results file ``name`` written before any of its deliveries' markers."""
    checks = list(load_catalogue())
    try:
        register_tables(con, files, [r.submission_id for r in _records(batch)], reference=False)
        _register_deliveries(con, batch)
        results, violations = run_checks(con, checks, run.allow_synthetic_fnr)
    finally:
        for table in (*TABLES, "ref_submission", "ref_pair"):
            con.execute(f"DROP TABLE IF EXISTS {table}")
    by_check = {c.id: c for c in checks}
    split = _Split(results, violations, batch)
    markers = [str(_marker(run.home, d.ord).relative_to(run.home.root / "quality")) for d in batch]
    table = split.results.replace_schema_metadata(
        {**(split.results.schema.metadata or {}), DELIVERIES: json.dumps(markers).encode()}
    )
    write_bytes(batches_folder(run.home) / name, _parquet(table), durable=False)
    outcomes: dict[str, QualityOutcome] = {}
    for delivery in batch:
        outcomes |= _write_delivery(run, split, name, delivery, by_check)
    return outcomes, split.results


def _batch_name(catalogue: str, batch: list[Delivery]) -> str:
    """A batch's results file's name, from what decides its rows (the catalogue, each ord and
    its ide): a run that checks the same deliveries again writes the same name, so two HOMEs
    checked alike hold the same files; a new check of any delivery (its ide, another
    catalogue) gets a new name, never rewriting a file other markers still name."""
    key = hashlib.sha256(catalogue.encode())
    for delivery in batch:
        key.update(
            f"{delivery.ord.submission_id}:{delivery.ide and delivery.ide.submission_id}\n".encode()
        )
    return key.hexdigest()[:32] + RESULTS


@dataclass(frozen=True)
class _Sweep:
    """The results files a run may leave without a marker naming them, removed after its
    markers once none does.

    A journal of them is written before the checks (``quality/batches/sweep.json``): the files
    the pending deliveries' markers name now (a new check points the markers elsewhere), this
    run's batch files (a run killed between a batch file and its markers leaves one that no
    marker names), and whatever a killed run's journal still lists. After the run's markers,
    each listed file no marker names is removed, then the journal; a run killed before that
    leaves the journal to the next one. Only the markers that can name a file are read (a batch
    file lists its deliveries'), not every marker of the year.
    """

    home: Home
    journal: Path
    files: list[str]  # paths under quality/
    written: frozenset[str]  # this run's batch files: their markers name them when it ends

    @classmethod
    def before(cls, home: Home, named: list[str], names: list[str]) -> _Sweep:
        """The journal for a run whose pending deliveries' markers name the results files
        ``named`` now and that checks them into batch files ``names``."""
        journal = batches_folder(home) / SWEEP
        files = dict.fromkeys(_read_json(journal) or [])
        files |= dict.fromkeys(named)
        written = [f"{BATCHES}/{name}" for name in names]
        files |= dict.fromkeys(written)
        if files:  # none when nothing is pending and no run was killed
            write_text(journal, json.dumps(list(files)), durable=False)
        return cls(home, journal, list(files), frozenset(written))

    def after(self) -> None:
        """Remove the listed files no marker names (every marker of the run written)."""
        quality = self.home.root / "quality"
        for name in self.files:
            path = quality / name
            if name not in self.written and path.exists() and not _named(quality, path):
                path.unlink()
        self.journal.unlink(missing_ok=True)


SWEEP = "sweep.json"


def _named(quality: Path, path: Path) -> bool:
    """Whether a marker names the results file at ``path``: for a batch file, one of the
    markers its metadata lists; for a delivery's own file (an older HOME), its marker when
    that names no batch file."""
    if path.parent.name != BATCHES:
        marker = _read_json(path.with_name(path.name.removesuffix(RESULTS) + MARKER))
        return marker is not None and "results" not in marker
    listed = json.loads(pq.read_schema(path).metadata[DELIVERIES])
    return any(
        (marker := _read_json(quality / m)) is not None and marker.get("results") == path.name
        for m in listed
    )


def _write_delivery(
    run: _Run, split: _Split, name: str, delivery: Delivery, by_check: dict[str, Check]
) -> dict[str, QualityOutcome]:
    """The files of a delivery of the batch whose results file is ``name`` (written), its marker
    last (the commit mark): the violations file only when there are violations (the marker
    counts them), an XPR_ERR per submission; the outcome of each submission."""
    home = run.home
    parts = [(delivery.ord, ORD_TABLES)]
    if delivery.ide is not None:
        parts.append((delivery.ide, IDE_TABLES))
    sids = [record.submission_id for record, _ in parts]
    own = split.violation_rows(sids)
    violations = results_path(home, delivery.ord, "violations")
    if len(own):
        write_bytes(violations, split.violations_file(own), durable=False)
    else:  # an earlier check of the delivery (before its ide, another catalogue) may have some
        violations.unlink(missing_ok=True)
    outcomes: dict[str, QualityOutcome] = {}
    for record, tables in parts:
        info = submission_info(record, run.names.get(record.unit))
        summary, findings = split.report_rows(sids, tables)
        _report(home.feedback / info.submission_id, info, summary, findings, by_check)
        outcomes[record.submission_id] = split.outcome(record.submission_id)
    marker = {
        "ide_sid": delivery.ide.submission_id if delivery.ide else None,
        "catalogue": run.catalogue,
        "violations": len(own),
        "results": name,
    }
    write_text(_marker(home, delivery.ord), json.dumps(marker), durable=False)
    return outcomes


def check_alone(
    folder: Path,
    record: LedgerRecord,
    tables: dict[str, Path],
    unit_name: str | None,
    allow_synthetic_fnr: bool,
) -> QualityOutcome:
    """The catalogue over one submission that never enters production (the validation
    service, vendor test data, ``npr validate``), its XPR_ERR written into ``folder``.

    The same checks as a production delivery, over the file's own staged tables; the file
    stands alone, so the rules that compare an ord with its ide (those that read ``ref_pair``)
    are left out.
    """
    delivery = Delivery(record, None)
    checks = [c for c in load_catalogue() if "ref_pair" not in str(c.kwargs.get("sql", ""))]
    con = duckdb.connect(config={"threads": 1})
    try:
        register_tables(
            con, {table: [path] for table, path in tables.items()}, [record.submission_id]
        )
        _register_deliveries(con, [delivery])
        results, violations = run_checks(con, checks, allow_synthetic_fnr)
    finally:
        con.close()
    split = _Split(results, violations, [delivery])
    own = ORD_TABLES if record.message_type == "NPR_ORD" else IDE_TABLES
    summary, findings = split.report_rows([record.submission_id], own)
    info = submission_info(record, unit_name)
    _report(folder, info, summary, findings, {c.id: c for c in checks})
    return split.outcome(record.submission_id)


class _Split:
    """A batch's results and violations, cut per delivery.

    Grouped once per batch (row positions per submission id) instead of a boolean mask per
    delivery, which made the split O(deliveries x rows); the results files are converted to
    Arrow once for the whole batch. Every file keeps exactly the rows, order and types that
    filtering the batch frame and ``to_parquet`` gave.
    """

    def __init__(self, results: pd.DataFrame, violations: pd.DataFrame, batch: list[Delivery]):
        flagged = results[results["unexpected_count"] > 0]
        self._flagged, self._flagged_at = list(flagged.itertuples(index=False)), _positions(flagged)
        self._violations, self._violations_at = violations, _positions(violations)
        self._violation_rows = list(violations.itertuples(index=False))
        self._found = violations.groupby(["submission_id", "severity"]).size().to_dict()
        self.results = _results_rows(results, batch)

    def violation_rows(self, sids: list[str]) -> np.ndarray:
        """Positions of the violations of the delivery's submissions (most have none)."""
        return _rows(self._violations_at, sids)

    def violations_file(self, rows: np.ndarray) -> bytes:
        """The violations file of a delivery's rows (:meth:`violation_rows`, not none).

        Converted per delivery, because pandas types an all-missing column by its content.
        """
        return _parquet(pa.Table.from_pandas(self._violations.take(rows), preserve_index=False))

    def report_rows(self, sids: list[str], tables: tuple[str, ...]) -> tuple[list, list]:
        """Result rows with findings and violation rows of ``tables``, for one XPR_ERR."""
        summary = [self._flagged[p] for p in _rows(self._flagged_at, sids)]
        findings = [self._violation_rows[p] for p in _rows(self._violations_at, sids)]
        return [r for r in summary if r.table in tables], [r for r in findings if r.table in tables]

    def outcome(self, sid: str) -> QualityOutcome:
        errors, warnings = self._found.get((sid, "error"), 0), self._found.get((sid, "warning"), 0)
        return QualityOutcome(errors=int(errors), warnings=int(warnings))


Positions = dict[str, np.ndarray]
_NONE = np.empty(0, dtype=np.int64)


def _positions(frame: pd.DataFrame) -> Positions:
    """Row positions per submission id."""
    return frame.groupby("submission_id", sort=False).indices


def _rows(positions: Positions, sids: list[str]) -> np.ndarray:
    """Positions of the rows of any of ``sids``, ascending, as a boolean mask selects them."""
    return np.unique(np.concatenate([positions.get(s, _NONE) for s in sids]))


def _results_rows(results: pd.DataFrame, batch: list[Delivery]) -> pa.Table:
    """Every delivery's results rows end to end, as one Arrow table (the batch's file).

    A delivery's rows are the results of its ord and ide, with the delivery's unit, period and
    submission ids added, typed as ``assign`` of a scalar types them.
    """
    at = _positions(results)
    chosen = [_rows(at, [r.submission_id for r in (d.ord, d.ide) if r is not None]) for d in batch]
    counts = [len(c) for c in chosen]

    def repeat(values: list[str | None], dtype: str) -> pd.api.extensions.ExtensionArray:
        return pd.array(np.repeat(np.array(values, dtype=object), counts), dtype=dtype)

    rows = results.take(np.concatenate([_NONE, *chosen])).assign(
        unit=repeat([d.ord.unit for d in batch], "str"),
        period_to=repeat([d.ord.period_to for d in batch], "str"),
        ord_sid=repeat([d.ord.submission_id for d in batch], "str"),
        ide_sid=repeat([d.ide.submission_id if d.ide else None for d in batch], "string"),
    )
    return pa.Table.from_pandas(rows, preserve_index=False)


Located = dict[str, dict[str, Path]]
"""Per lake table, the part file of each submission id."""


def _located(home: Home, deliveries: list[Delivery]) -> Located:
    """The part files of every delivery's ord (and ide), chosen from the Delta logs once per
    run: each batch reading the eight logs again cost ~9 % of the checks on a national month
    (33 batches, 264 log reads)."""
    ords = [d.ord.submission_id for d in deliveries]
    ides = [d.ide.submission_id for d in deliveries if d.ide is not None]
    wanted = {t: ords for t in ORD_TABLES} | {t: ides for t in IDE_TABLES}
    return part_files_by_table(home, wanted)


def _files(located: Located, batch: list[Delivery]) -> dict[str, list[Path]]:
    """Each table's part files of the batch's ords (and ides), in the logs' order, each once
    (a part may hold several submissions)."""
    sids = {r.submission_id for r in _records(batch)}
    return {
        table: list(dict.fromkeys(p for sid, p in chosen.items() if sid in sids))
        for table, chosen in located.items()
    }


def _records(batch: list[Delivery]) -> list[LedgerRecord]:
    """The batch's ords and ides."""
    return [r for d in batch for r in (d.ord, d.ide) if r is not None]


def _register_deliveries(con: duckdb.DuckDBPyConnection, batch: list[Delivery]) -> None:
    records = _records(batch)
    submissions = pa.table(
        {
            "submission_id": [r.submission_id for r in records],
            "extracted": [date.fromisoformat(r.extracted) for r in records],
            "period_to": [date.fromisoformat(r.period_to) for r in records],
        }
    )
    paired = [d for d in batch if d.ide is not None]
    pairs = pa.table(
        {
            "ord_sid": pa.array([d.ord.submission_id for d in paired], pa.string()),
            "ide_sid": pa.array([d.ide.submission_id for d in paired], pa.string()),
        }
    )
    for name, table in (("ref_submission", submissions), ("ref_pair", pairs)):
        con.register(f"_{name}", table)
        con.execute(f"CREATE OR REPLACE TEMP TABLE {name} AS SELECT * FROM _{name}")


def _parquet(table: pa.Table) -> bytes:
    """The bytes ``DataFrame.to_parquet(index=False)`` writes, from the Arrow table it makes."""
    sink = pa.BufferOutputStream()
    pq.write_table(table, sink)
    return sink.getvalue().to_pybytes()


def _report(
    folder: Path,
    info: SubmissionInfo,
    summary: list[Any],
    violations: list[Any],
    by_check: dict[str, Check],
) -> None:
    """XPR_ERR of one submission from its result rows with findings and its violation rows
    (the XML only: its HTML and CSV are rendered on request, ``feedback.reports.display_files``)."""
    rules = [
        {
            "rule": row.check_id,
            "severity": row.severity,
            "category": row.category,
            "count": int(row.unexpected_count),
            "share": float(row.share),
            "message": by_check[row.check_id].message,
            "fix": by_check[row.check_id].fix,
        }
        for row in summary
    ]
    findings = [
        Finding(
            rule=row.check_id,
            severity=row.severity,
            message=by_check[row.check_id].message,
            fix=by_check[row.check_id].fix,
            episode_id=row.record_id if row.table in EPISODE_TABLES else None,
            patient_nr=row.pasientNr,
            line=None if pd.isna(row.line) else int(row.line),
            value=None if pd.isna(row.value) else str(row.value),
        )
        for row in violations[:EXAMPLES]
    ]
    write_xpr_err(folder, info, findings, rules)


def submission_info(record: LedgerRecord, unit_name: str | None) -> SubmissionInfo:
    """What an answer says about the file it answers, from its ledger record."""
    return SubmissionInfo(
        submission_id=record.submission_id,
        file=record.file,
        received=record.received,
        status=str(record.status),
        unit=record.unit,
        unit_name=unit_name,
        message_type=record.message_type,
        version=record.version,
        period=f"{record.period_from}/{record.period_to}",
        lopenr=record.lopenr,
        checksum=record.checksum,
        size=record.size,
        episodes=record.episodes,
        patients=record.patients,
    )
