"""``npr intake DIR``: receive every file of an inbox, in parallel, idempotently.

The main process archives each file first (content-addressed, so a file seen before is a
duplicate at once), workers on both cores read, validate and stage the new ones, and the main
process commits them in inbox order: ledger-level checks (lopenr reuse, late older files,
ident coverage), the XPR_VAL report, then the ledger record. The accepted monthly files' tables
(staged Parquet, one file per table of a large file or of a chunk of small files) are
committed into the lake's Delta tables per intake batch, before the batch's ledger records
(:mod:`npr_pipeline.store.lake`). A run killed
anywhere leaves at most staged files, part files outside the Delta log or an uncommitted batch,
none of them visible; the rerun processes those files again and ends in the same state as one
clean run.

Daily event files and report files (any type of ``npr_pipeline/messages/``: KPP, the
forløpsmelding, XPR_VTK, NPR-melding-TSB) are read by :mod:`npr_pipeline.intake.daily` in the
workers; the main process checks their lopenr like the monthly ones and commits each batch of
them by the protocol of :mod:`npr_pipeline.intake.daily_batch` (rows appended under the batch
number, made visible by the ledger commit). A report file received before its type's calendar
opens production (the forløpsmelding until 31 May 2026) is answered in full and recorded as
``test`` with the info reason ``trial_period``: its rows are never stored.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import time
import traceback
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import BrokenExecutor, Future, ProcessPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from functools import partial
from itertools import chain, islice
from pathlib import Path
from typing import NamedTuple

import pyarrow as pa

from npr_pipeline.errors import log_error
from npr_pipeline.feedback.deliver import deliver_answers
from npr_pipeline.feedback.outbox import scratch
from npr_pipeline.feedback.reports import SubmissionInfo, write_xpr_err, write_xpr_val
from npr_pipeline.feedback.test_route import answer_test_file
from npr_pipeline.home import Home
from npr_pipeline.intake.archive import archive_file, sync_archive
from npr_pipeline.intake.daily import DailyRead, daily_header, read_daily, untyped_by_probe
from npr_pipeline.intake.daily_batch import DailyFile, prepare_batch, report_summary
from npr_pipeline.intake.gate import Header, RegistryIndex
from npr_pipeline.intake.key_digest import PAIRED_KEYS
from npr_pipeline.intake.lexical import xs_date_attr
from npr_pipeline.intake.reader import ReadResult, read_submission
from npr_pipeline.intake.reasons import Reason, Status, reason
from npr_pipeline.locking import home_lock
from npr_pipeline.messages import reaches_production, reception_phase
from npr_pipeline.processes import die_with_parent
from npr_pipeline.quality.submission import Delivery, check_deliveries, not_yet_checked
from npr_pipeline.registry import current_registry
from npr_pipeline.settings import load_settings
from npr_pipeline.store import lake
from npr_pipeline.store.events import compact, reused_tables, uncompacted
from npr_pipeline.store.ledger import (
    BatchCommit,
    LedgerLookup,
    LedgerRecord,
    LopenrClaimed,
    load_ledger,
    record_count,
    record_keys,
    typed,
    write_records,
)
from npr_pipeline.store.state import held_writes, shared_reads
from npr_pipeline.warehouse import sync_intake

EXAMPLES = 5
# Workers are replaced after this many bytes read each, or this many files (whichever comes
# first): allocator pools (Arrow, lxml) otherwise keep the high-water mark of every file a
# worker has read, and a long inbox grows without bound. The bytes bound what a worker can
# have grown to (a monthly file of 1-2 MB: ~64 files, as before); the files bound the pool's
# queue of tiny daily files (a few kB each) whose replacement would otherwise cost more than
# their reading.
WORKER_BYTES = 128 * 2**20
WORKER_FILES = 1_024
# Files submitted to a pool and not yet committed, per worker: enough to keep the workers busy
# while the main process commits, few enough that their read rows stay a few MiB. A commit
# batch's flush holds the main process ~0.3-0.5 s (archive sync, lake publish, ledger), during
# which it submits nothing: 32 a worker are ~0.5 s of both readers' work on the national
# April, whose readers were asleep in 13-21 % of the receipt's samples (docs/benchmarks.md,
# "Session 13: intake's wall time"; measured on a loaded machine).
IN_FLIGHT = 96
# Files under SMALL_FILE bytes go to a worker in chunks of up to CHUNK_FILES files and
# CHUNK_BYTES bytes (in name order); the chunk's production rows of a table become one part
# file (docs/decisions/storage.md, "One part per table per chunk"): a small ord's seven
# parts cost ~3.8 ms of CPU to write, and each part costs the publish a rename and an add
# action and the content checks a file to open. A larger file keeps parts of its own.
SMALL_FILE = 2**20
CHUNK_FILES = 16
CHUNK_BYTES = 4 * 2**20
# A lopenr this far above the unit's current one is a typo or garbage, not the next message:
# accepted, it would stay the unit's current file for the rest of the year.
LOPENR_JUMP = 1_000
LOCK_WAIT = 600.0  # seconds a second intake waits for the first before it gives up
# Ledger records are committed this many files at a time (one transaction), with one lake
# batch (a Delta commit per table) and one sync of the archive: a batch's fixed cost is ~0.25
# CPU s of the main process whatever its size (the state file opened, eight Delta commits and
# log updates), so 200 files paid it 20 times on the national April, 400 files 10 times
# (docs/benchmarks.md, "Session 13"). A kill loses at most the uncommitted files' records; the
# rerun processes them again: up to 400 files, ~8 s of wall on both cores (the April's 3,976 in
# ~75 s), against a kill that is rare and a saving on every intake.
COMMIT_FILES = 400
# Above this many ledger records per inbox file, intake looks records up by key (a file's
# submission id, a unit's records) instead of reading the whole ledger at its start: a read
# costs ~9.5 us of CPU per record, a file's look-ups ~1.7 ms (docs/benchmarks.md, "Per-intake
# costs that grow with the ledger"), and the ledger holds ~13 million records by December.
# Both paths stay (session 9, "One path for intake's ledger reads?"): on make demo's, the reader
# floor's and a test's HOME (98-643 files) the look-ups cost no measurable CPU of `npr intake`
# (+0.2-0.8 s of 6-19 s, within the runs' spread), but they cost ~1.3 ms a file whatever the
# ledger's size, so a national day of 37,000 files on a young ledger would pay ~48 s of CPU
# that one read of its records (~50-170 ms up to 20,000 records) spares.
RECORDS_PER_FILE = 200
# The monthly pairs: every delivery (an ord with its ide) is checked again when the catalogue
# changes, so their accepted records are read whole even when the others are looked up.
PAIRED = ("NPR_ORD", "NPR_IDE")


@dataclass(slots=True)
class SubmissionResult:
    """One line of the intake summary (kept for every file of the run: slots, not a dict)."""

    file: str
    submission_id: str
    unit: str | None
    message_type: str | None
    status: str
    reasons: list[Reason]
    episodes: int = 0
    quality: dict[str, int] | None = None

    @classmethod
    def of(
        cls, record: LedgerRecord, reasons: list[Reason], quality: dict[str, int] | None = None
    ) -> SubmissionResult:
        """The summary line of a file as its ledger record (accepted, rejected, test or
        failed) has it: one construction for every route."""
        r = record
        return cls(r.file, r.submission_id, r.unit, r.message_type, r.status, reasons,
                   r.episodes, quality)  # fmt: skip

    def as_json(self) -> dict[str, object]:
        return {
            "quality": self.quality,
            "file": self.file,
            "submission_id": self.submission_id,
            "unit": self.unit,
            "message_type": self.message_type,
            "status": self.status,
            "reasons": [r.as_json() for r in self.reasons],
            "episodes": self.episodes,
        }


@dataclass
class IntakeSummary:
    """Counts of files by outcome; ``episodes`` counts episodes newly parsed."""

    submissions: list[SubmissionResult] = field(default_factory=list)
    seconds: float = 0.0
    bytes: int = 0

    def count(self, status: str) -> int:
        return sum(1 for s in self.submissions if s.status == status)

    @property
    def episodes(self) -> int:
        return sum(s.episodes for s in self.submissions)

    def rejected_by_reason(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for sub in self.submissions:
            if sub.status == Status.REJECTED:
                for code in dict.fromkeys(r.code for r in sub.reasons if r.severity == "error"):
                    counts[code] = counts.get(code, 0) + 1
        return dict(sorted(counts.items()))

    def as_json(self) -> dict[str, object]:
        return {
            "files": len(self.submissions),
            "accepted": self.count(Status.ACCEPTED),
            "rejected": self.count(Status.REJECTED),
            "duplicates": self.count(Status.DUPLICATE),
            "test": self.count(Status.TEST),
            "failed": self.count(Status.FAILED),
            "episodes": self.episodes,
            "bytes": self.bytes,
            "seconds": round(self.seconds, 3),
            "rejected_by_reason": self.rejected_by_reason(),
            "submissions": [s.as_json() for s in self.submissions],
        }


@dataclass(frozen=True)
class _Task:
    file: str
    archived: Path
    submission_id: str
    checksum: str
    size: int
    received: str


_Chunk = tuple[_Task, ...]  # what a worker takes at once: consecutive files, in name order


@dataclass
class _Outcome:
    read: ReadResult
    lake: dict[str, lake.Part]  # an accepted file's staged tables, waiting for their batch
    error: str | None = None  # an unexpected failure handling this file (ours, not the unit's)
    daily: DailyRead | None = None  # a daily event file (then ``read`` is empty)
    trace: str = ""  # the failure's traceback, for the error log (formatted where it happened)


def _failed(error: BaseException) -> _Outcome:
    trace = "".join(traceback.format_exception(error))
    return _Outcome(ReadResult(), {}, f"{type(error).__name__}: {error}", trace=trace)


_WORKER: dict[str, object] = {}


def _init_worker(
    index: RegistryIndex, home_root: str, max_bytes: int, parent: int | None = None
) -> None:
    """A worker's state. ``index`` is built once by the main process and inherited by every
    worker of every pool through fork (65,000 units take ~1 s of CPU to index: per worker and
    pool, that was ~20 ms per daily file)."""
    if parent is not None:
        die_with_parent(parent)
    _WORKER["index"] = index
    _WORKER["home"] = Home(root=Path(home_root))
    _WORKER["max_bytes"] = max_bytes


def _process_chunk(chunk: _Chunk) -> list[_Outcome]:
    """Each file of the chunk read as on its own (its outcome, reasons and counts its own);
    the production rows of several small files are then staged as one part per table
    (:func:`_stage_chunk`), a lone file's as its own parts."""
    if len(chunk) == 1:
        return [_process(chunk[0])]
    outcomes: list[_Outcome] = []
    held: list[tuple[int, dict[str, pa.Table]]] = []  # a production file's tables, by index
    for i, task in enumerate(chunk):
        frames: dict[str, pa.Table] = {}
        outcome = _process(task, frames)
        if outcome.error is None and frames:
            held.append((i, frames))
        outcomes.append(outcome)
    _stage_chunk(chunk, outcomes, held)
    return outcomes


def _stage_chunk(
    chunk: _Chunk, outcomes: list[_Outcome], held: list[tuple[int, dict[str, pa.Table]]]
) -> None:
    """Write the chunk's held tables, one part file per table under
    ``staging/chunk-<first id>/``, and give each file's outcome its parts (members named, in
    row order, so the publish can drop a file refused at its commit). A table held by one
    file alone is that file's own part. A failed write fails the files that had rows."""
    if not held:
        return
    home: Home = _WORKER["home"]  # type: ignore[assignment]
    folder = home.root / "staging" / f"{lake.CHUNK}{chunk[held[0][0]].submission_id}"
    try:
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)
        for table in dict.fromkeys(t for _, frames in held for t in frames):
            have = [(i, frames[table]) for i, frames in held if table in frames]
            path = folder / f"{table}.parquet"
            lake.write_part(path, pa.concat_tables(frame for _, frame in have))
            members = tuple(chunk[i].submission_id for i, _ in have) if len(have) > 1 else ()
            for i, frame in have:
                read = outcomes[i].read
                unit = read.gate.unit["reshID"]  # type: ignore[index]
                outcomes[i].lake[table] = lake.Part(
                    table, path, chunk[i].submission_id, unit, read.year or 0,
                    frame.num_rows, members,
                )  # fmt: skip
    except Exception as exc:  # noqa: BLE001 - the chunk's files fail, retried by the next run
        shutil.rmtree(folder, ignore_errors=True)
        for i, _ in held:
            outcomes[i] = _failed(exc)


def _process(task: _Task, held: dict[str, pa.Table] | None = None) -> _Outcome:
    """One file, isolated: whatever goes wrong while handling it is this file's outcome
    (``failed``, retried by the next intake), never the end of the run for the others."""
    try:
        return _read_and_stage(task, held)
    except Exception as exc:  # noqa: BLE001 - any failure must stay this file's
        home: Home = _WORKER["home"]  # type: ignore[assignment]
        _discard(home, task.submission_id)
        if held is not None:
            held.clear()
        return _failed(exc)


def _discard(home: Home, submission_id: str) -> None:
    """Remove what an unfinished submission left: its staging folder (its tables reach the
    lake only when its batch is published)."""
    shutil.rmtree(home.root / "staging" / submission_id, ignore_errors=True)


def _read_and_stage(task: _Task, held: dict[str, pa.Table] | None = None) -> _Outcome:
    """Read one archived file; if it is production data, its staged tables become parts for
    the lake (with the row counts the reader wrote: reading them back from each footer cost
    ~0.2 ms per table). With ``held`` (a chunk's file), its production tables are left there
    for :func:`_stage_chunk` instead; a file that is not production data leaves none.

    A file the native probe shows to be of no typed type, with a clean prolog
    (:func:`~npr_pipeline.intake.daily.untyped_by_probe`), skips the two lxml parses that
    would have said so (``daily_header`` and the prolog check, ~1 ms of ~7); every other
    file is read as before."""
    home: Home = _WORKER["home"]  # type: ignore[assignment]
    monthly = False
    if 0 < task.size <= _WORKER["max_bytes"]:  # type: ignore[operator]
        monthly = untyped_by_probe(task.archived)
        header = None if monthly else daily_header(task.archived)
        if header is not None:
            index: RegistryIndex = _WORKER["index"]  # type: ignore[assignment]
            daily = read_daily(task.archived, header, index, task.submission_id)
            return _Outcome(ReadResult(), {}, daily=daily)
    staging = home.root / "staging" / task.submission_id
    shutil.rmtree(staging, ignore_errors=True)
    received = datetime.fromisoformat(task.received).date()
    read = read_submission(
        task.archived,
        _WORKER["index"],  # type: ignore[arg-type]
        staging,
        task.submission_id,
        received,
        _WORKER["max_bytes"],  # type: ignore[arg-type]
        held,
        prechecked=monthly,  # its size checked above, the rest by the probe
    )
    parts: dict[str, lake.Part] = {}
    production = read.gate.test_route is None and read.gate.unit is not None
    if held and not production:
        held.clear()
    if read.staged and production:
        unit = read.gate.unit["reshID"]
        parts = {
            table: lake.Part(
                table, path, task.submission_id, unit, read.year or 0, read.rows[table]
            )
            for table, path in read.staged.items()
        }
    elif read.gate.test_route is None:  # a test file's tables are checked at its commit
        shutil.rmtree(staging, ignore_errors=True)
    return _Outcome(read, parts)


def intake_directory(
    home: Home,
    inbox: Path,
    workers: int = 2,
    progress: Callable[[int], None] | None = None,
    max_bytes: int | None = None,
    wait: float = LOCK_WAIT,
    on_wait: Callable[[str], None] | None = None,
    clock: Callable[[], datetime] | None = None,
) -> IntakeSummary:
    """Receive every regular file in ``inbox`` (sorted by name), one intake per HOME at a time.

    A second intake waits up to ``wait`` seconds for the first (``on_wait`` is told who holds
    HOME), then raises :class:`~npr_pipeline.locking.HomeLocked`. Under the lock, whatever an
    interrupted intake left half-done is swept first; the lopenr rule and every other ledger
    check see all committed records, so any interleaving ends as a sequential run would.
    ``clock`` gives each file's time of receipt (UTC; default now): a type's calendar, e.g. the
    forløpsmelding's trial period, is judged by it.
    """
    started = time.perf_counter()
    home.ensure()
    with home_lock(home, "intake", wait, on_wait), reused_tables(), shared_reads():
        sweep_interrupted(home)
        summary = _intake(home, inbox, workers, progress, max_bytes, clock or _now)
    summary.seconds = time.perf_counter() - started
    return summary


def sweep_interrupted(home: Home, submission_ids: Iterable[str] = ()) -> None:
    """Remove what a killed intake left: staging folders, temporary files of atomic writes in
    the ledger folder and the outbox's scratch folder, and those in the feedback folders of
    ``submission_ids`` (only intake and ``npr send`` write there, and they hold the lock).

    feedback/ and outbox/ hold files per file received (millions on the daily route), so they
    are never walked: every outbox write keeps its temporary file in ``outbox/.tmp``
    (:func:`~npr_pipeline.feedback.outbox.scratch`), and a run sweeps the feedback folders it
    is about to write, those of the files it processes and of the deliveries it checks. A
    killed run's leftovers are exactly there, because the files it had not committed are
    processed again and its unchecked deliveries checked again.
    """
    staging = home.root / "staging"
    for leftover in staging.iterdir() if staging.is_dir() else ():
        shutil.rmtree(leftover, ignore_errors=True)  # the folder itself stays (owner-only)
    for tmp in home.ledger.rglob(".*.tmp"):  # the JSON ledger before state.duckdb: small
        tmp.unlink(missing_ok=True)
    outbox_scratch = scratch(home)
    for tmp in outbox_scratch.iterdir() if outbox_scratch.is_dir() else ():
        tmp.unlink(missing_ok=True)
    lake.sweep(home)
    _sweep_feedback(home, submission_ids)


def _sweep_feedback(home: Home, submission_ids: Iterable[str]) -> None:
    """Temporary files of interrupted atomic writes in these submissions' feedback folders
    (``.*.tmp``, :mod:`npr_pipeline.atomic`'s names).

    One ``scandir`` per folder, with str paths: intake sweeps the folder of every file it
    receives, almost always one that does not exist yet, and ``Path.glob`` cost ~90 us of CPU
    per folder (a selector, a pattern and Path objects), ~0.35 s on the national April."""
    feedback = os.fspath(home.feedback)
    for sid in submission_ids:
        try:
            entries = os.scandir(os.path.join(feedback, sid))
        except (FileNotFoundError, NotADirectoryError, PermissionError):  # as glob skips them
            continue
        with entries:
            leftovers = [e.path for e in entries if _is_leftover(e.name)]
        for path in leftovers:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)


def _is_leftover(name: str) -> bool:
    """``name`` matches ``.*.tmp`` as ``glob`` matches it: an atomic write's temporary file."""
    return len(name) >= 5 and name.startswith(".") and name.endswith(".tmp")


def _now() -> datetime:
    return datetime.now(UTC)


def _intake(
    home: Home,
    inbox: Path,
    workers: int,
    progress: Callable[[int], None] | None,
    max_bytes: int | None,
    clock: Callable[[], datetime],
) -> IntakeSummary:
    settings = load_settings(home)
    summary = IntakeSummary()
    got = _receive(home, inbox, workers, progress, max_bytes or settings.max_file_bytes, clock,
                   summary)  # fmt: skip
    by_id = got.by_id
    if got.batches or uncompacted(home):  # and what a killed run left behind
        compact(home)
    behind = got.lake_tables | lake.unmaintained(home)  # and what a killed run left behind
    if behind:
        lake.maintain(home, behind)
    pending = not_yet_checked(home, got.deliveries)
    due = pending.deliveries
    _sweep_feedback(home, (r.submission_id for d in due for r in (d.ord, d.ide) if r))
    checked = check_deliveries(home, pending, settings.synthetic_fnr_accepted)
    for sid, found in checked.outcomes.items():
        if sid in by_id:
            by_id[sid].quality = {"errors": found.errors, "warnings": found.warnings}
    committed = _sync(home, by_id, checked.results)
    answered = [*by_id, *checked.outcomes]
    deliver_answers(home, settings, answered, now=clock(), committed=committed)
    summary.submissions = [by_id[s] if isinstance(s, str) else s for s in got.slots]
    for sub in summary.submissions:
        first = by_id.get(sub.submission_id)
        if sub.status == Status.DUPLICATE and first is not None:
            sub.unit, sub.message_type = first.unit, first.message_type
            if first.status == Status.FAILED:  # nothing received: retried with it (CONTRACT)
                sub.status, sub.reasons = first.status, list(first.reasons)
    return summary


@dataclass
class _Received:
    """What the commit loop leaves to the rest of the run: this run's results and what its
    commits touched. The registry index, the ledger view and the look-ups' connection end
    with the loop (~100 MiB of the main process on a national day of history, held through
    the quality checks, the warehouse and the answers before)."""

    by_id: dict[str, SubmissionResult]
    slots: list[SubmissionResult | str]  # per inbox file: a duplicate's line or its id
    deliveries: list[Delivery]
    batches: int
    lake_tables: set[str]


def _receive(
    home: Home,
    inbox: Path,
    workers: int,
    progress: Callable[[int], None] | None,
    max_bytes: int,
    clock: Callable[[], datetime],
    summary: IntakeSummary,
) -> _Received:
    """Archive, read and commit every file of the inbox (the bytes counted in ``summary``)."""
    files = sorted(p for p in inbox.iterdir() if p.is_file() and not p.name.startswith("."))
    lookup = LedgerLookup(home)
    first_record, state = _ledger_view(home, lookup, len(files))
    pending_writes = _Pending(home, lookup.close)
    slots: list[SubmissionResult | str] = []

    def receive() -> Iterator[_Task]:
        """Archive each file before anything else happens to it; duplicates end here.

        A generator, so the main process archives the next files while the workers already
        read the first ones.
        """
        pending: set[str] = set()
        for path in files:
            archived = archive_file(path, home.archive, durable=False)  # synced per commit
            summary.bytes += archived.size
            sid = archived.submission_id
            first = None if sid in pending else first_record(sid)
            if first is not None or sid in pending:
                slots.append(_duplicate(path.name, sid, first))
                if progress:
                    progress(1)
                continue
            pending.add(sid)
            _sweep_feedback(home, [sid])
            received = clock().replace(microsecond=0).isoformat()
            slots.append(sid)
            yield _Task(path.name, archived.path, sid, archived.checksum, archived.size, received)

    by_id: dict[str, SubmissionResult] = {}
    index = RegistryIndex(current_registry(home))  # the registry's frame is not kept
    try:
        for chunk, outcomes in _run(_chunks(receive()), index, home, workers, max_bytes):
            for task, outcome in zip(chunk, outcomes, strict=True):
                by_id[task.submission_id] = _commit_or_fail(
                    home, task, outcome, state, pending_writes
                )
                if progress:
                    progress(1)
            # at a chunk's end: its part files are published with all their members decided
            if len(pending_writes) >= COMMIT_FILES:
                pending_writes.flush(by_id)
    finally:  # what is done is committed, also when the run stops on an error
        pending_writes.flush(by_id)
        lookup.close()
        for leftover in (home.root / "staging").glob(f"{lake.CHUNK}*"):
            shutil.rmtree(leftover, ignore_errors=True)  # chunks whose files were all refused
    return _Received(by_id, slots, state.deliveries(), pending_writes.batches,
                     pending_writes.lake_tables)  # fmt: skip


def _sync(home: Home, by_id: dict[str, SubmissionResult], results: list[pa.Table]) -> int:
    """This run's records into the warehouse's ledger copy; how many (the frame not kept)."""
    committed = load_ledger(home, submission_ids=by_id)  # the copy appends these
    sync_intake(home, committed, results)
    return len(committed)


class _First(NamedTuple):
    """What a duplicate's answer names of the file first received with the same content."""

    file: str
    unit: str | None
    message_type: str | None


def _first_of(record: LedgerRecord | None) -> _First | None:
    return _First(record.file, record.unit, record.message_type) if record else None


def _ledger_view(
    home: Home, lookup: LedgerLookup, files: int
) -> tuple[Callable[[str], _First | None], _LedgerState]:
    """How intake sees the committed ledger: a submission's first receipt and the accepted
    records' state, from keyed look-ups or from one read of every record, whichever is
    cheaper for an inbox of ``files`` (see ``RECORDS_PER_FILE``). Both give the same answers.

    The read keeps of each record only what the checks ask (its file, unit, type, year and
    lopenr; the paired types' whole records): the whole records were ~2 KB each in the main
    process for the whole run, ~70 MiB on a national day with one day of history."""
    paired = lookup.accepted_of_types(PAIRED)
    if record_count(home) > RECORDS_PER_FILE * max(files, 1):
        return lambda sid: _first_of(lookup.record(sid)), _LedgerState(paired, lookup)
    names: dict[str | None, str | None] = {}  # one object per unit and type, not per record
    known: dict[str, _First] = {}
    lopenrs: list[_Lopenr] = []
    for sid, file, status, unit, kind, year, lopenr in record_keys(home):
        unit, kind = names.setdefault(unit, unit), names.setdefault(kind, kind)
        known[sid] = _First(file, unit, kind)
        if status == Status.ACCEPTED:
            lopenrs.append((unit, kind, year, lopenr, file))
    return known.get, _LedgerState(paired, lopenrs=lopenrs)


def _chunks(tasks: Iterable[_Task]) -> Iterator[_Chunk]:
    """Consecutive files under ``SMALL_FILE`` bytes in chunks (at most ``CHUNK_FILES`` files
    and ``CHUNK_BYTES`` bytes), every larger file alone, in the tasks' order."""
    chunk: list[_Task] = []
    size = 0
    for task in tasks:
        if task.size >= SMALL_FILE:
            if chunk:
                yield tuple(chunk)
                chunk, size = [], 0
            yield (task,)
            continue
        chunk.append(task)
        size += task.size
        if len(chunk) >= CHUNK_FILES or size >= CHUNK_BYTES:
            yield tuple(chunk)
            chunk, size = [], 0
    if chunk:
        yield tuple(chunk)


def _run(
    chunks: Iterator[_Chunk], index: RegistryIndex, home: Home, workers: int, max_bytes: int
) -> Iterator[tuple[_Chunk, list[_Outcome]]]:
    """Each chunk with its files' outcomes, in order; a pool only when there is work to share.

    Workers are replaced by starting a fresh pool for every ``workers * WORKER_BYTES`` bytes or
    ``workers * WORKER_FILES`` files, not with ``max_tasks_per_child``: in CPython 3.11 to
    3.15b3 that option deadlocks once a worker retires with tasks still queued
    (python/cpython#115634), which hung whole inboxes.
    """
    first = list(islice(chunks, 2))
    if workers <= 1 or sum(len(c) for c in first) <= 1:
        _init_worker(index, str(home.root), max_bytes)
        try:
            for chunk in chain(first, chunks):
                yield chunk, _process_chunk(chunk)
        finally:  # the main process is its own worker: the index is not kept past the run
            _WORKER.clear()
        return

    def start() -> ProcessPoolExecutor:
        return ProcessPoolExecutor(
            max_workers=workers,
            initializer=_init_worker,
            initargs=(index, str(home.root), max_bytes, os.getpid()),
        )

    yield from _in_order(start, chain(first, chunks), workers)


def _in_order(
    start: Callable[[], ProcessPoolExecutor], chunks: Iterator[_Chunk], workers: int
) -> Iterator[tuple[_Chunk, list[_Outcome]]]:
    """Each chunk with its outcomes, in order, at most ``workers * IN_FLIGHT`` files submitted
    and not yet handed on, each generation of chunks (:func:`_generation`) to a pool of its own.

    The next generation's pool starts as soon as the last chunk of the current one is
    submitted, so the fresh workers read while the retiring ones finish their last files and
    the main process commits them: a replacement that drained the pool first left the cores
    idle ~1 s each time (docs/benchmarks.md, "Session 13: intake's wall time"). At most two
    pools live at once: a retiring pool is shut down (its workers idle, every outcome taken)
    when its last outcome is handed on, and always before a third one would start.

    A whole generation (2,048 daily files) submitted at once kept every outcome its future
    held, read rows and all, until the generation ended: the workers outrun the main process,
    so most of a generation's rows sat in the main process at once (~200 MiB at 2,048 files
    of 10-40 episodes). A consumed future is dropped at once.
    """
    flight = _InFlight()
    try:
        while True:
            while flight.retiring():  # the retiring pool ends before another one starts
                yield flight.hand_on()
            pool = flight.started(start())  # its workers fork at its first submit, not before
            taken = 0
            for chunk in _generation(chunks, workers):
                flight.submit(pool, chunk)
                taken += 1
                while flight.files >= workers * IN_FLIGHT:
                    yield flight.hand_on()
            if not taken:
                flight.drop_newest()
                break
        while flight.window:
            yield flight.hand_on()
    finally:  # as ``with`` would: each pool's submitted files are finished, its workers joined
        flight.shutdown()


class _InFlight:
    """The chunks submitted and not yet handed on, in order, with the pools reading them: the
    retiring pool (if any), then the current one."""

    def __init__(self) -> None:
        self.window: deque[tuple[_Chunk, Future[list[_Outcome]], ProcessPoolExecutor]] = deque()
        self.pools: deque[ProcessPoolExecutor] = deque()
        self.files = 0

    def started(self, pool: ProcessPoolExecutor) -> ProcessPoolExecutor:
        """``pool`` as the current pool (the previous one retiring)."""
        self.pools.append(pool)
        return pool

    def submit(self, pool: ProcessPoolExecutor, chunk: _Chunk) -> None:
        self.window.append((chunk, _submit(pool, chunk), pool))
        self.files += len(chunk)

    def retiring(self) -> bool:
        """Whether a retiring pool still has outcomes to hand on (shut down once it has none:
        its workers are idle by then, so joining them is immediate)."""
        while len(self.pools) > 1 and (not self.window or self.window[0][2] is not self.pools[0]):
            self.pools.popleft().shutdown()
        return len(self.pools) > 1

    def hand_on(self) -> tuple[_Chunk, list[_Outcome]]:
        """The oldest chunk with its outcomes (its future dropped at once)."""
        chunk, future, _ = self.window.popleft()
        self.files -= len(chunk)
        outcomes = _outcomes_of(future, len(chunk))
        self.retiring()
        return chunk, outcomes

    def drop_newest(self) -> None:
        """Shut down the current pool, which was given nothing (the chunks have ended)."""
        self.pools.pop().shutdown()

    def shutdown(self) -> None:
        for pool in self.pools:
            pool.shutdown()


def _generation(chunks: Iterator[_Chunk], workers: int) -> Iterator[_Chunk]:
    """The next chunks of one pool: until their bytes reach ``workers * WORKER_BYTES`` or their
    files ``workers * WORKER_FILES``."""
    size = count = 0
    for chunk in chunks:
        yield chunk
        size += sum(task.size for task in chunk)
        count += len(chunk)
        if size >= workers * WORKER_BYTES or count >= workers * WORKER_FILES:
            return


def _submit(pool: ProcessPoolExecutor, chunk: _Chunk) -> Future[list[_Outcome]]:
    """The chunk's future; once a worker has died the pool takes no more, and the rest of the
    batch fails with it (retried by the next intake) instead of ending the run."""
    try:
        return pool.submit(_process_chunk, chunk)
    except BrokenExecutor as exc:
        future: Future[list[_Outcome]] = Future()
        future.set_exception(exc)
        return future


def _outcomes_of(future: Future[list[_Outcome]], files: int) -> list[_Outcome]:
    """A worker's outcomes; a worker that died (killed, out of memory) fails its files only."""
    try:
        return future.result()
    except Exception as exc:  # noqa: BLE001 - BrokenProcessPool and the like: ours, retried
        return [_failed(exc) for _ in range(files)]


def _duplicate(name: str, sid: str, record: _First | None) -> SubmissionResult:
    return SubmissionResult(
        file=name,
        submission_id=sid,
        unit=record.unit if record else None,
        message_type=record.message_type if record else None,
        status=Status.DUPLICATE,
        reasons=[reason("duplicate", f"First received as {record.file}." if record else "")],
    )


_Key = tuple[str | None, str | None, int | None]  # unit, message type, year
_Lopenr = tuple[str | None, str | None, int | None, int | None, str]  # key, lopenr, file


class _LedgerState:
    """The accepted records' lopenrs, and the paired types' whole records, kept up to date as
    this run commits more.

    Indexed by unit, message type and year: every commit asks about its own unit's records,
    and a scan of all of them per commit made intake quadratic in the ledger (a national year
    holds ~50,000 accepted records; a month's 4,000 commits each scanned them all).

    Of a record the lopenr rules need only its lopenr and file (the first accepted with that
    lopenr owns it); the monthly pairs (``PAIRED``) are kept whole for the ord/ide checks and
    the deliveries. ``records`` may hold any records (the accepted ones count); ``lopenrs``
    the committed accepted records' keys. With ``lookup``, another type's unit, type and year
    is looked up in the ledger the first time a commit asks about it (then kept, with this
    run's lopenrs added).
    """

    def __init__(
        self,
        records: Iterable[LedgerRecord],
        lookup: LedgerLookup | None = None,
        lopenrs: Iterable[_Lopenr] = (),
    ) -> None:
        self._lopenrs: dict[_Key, dict[int | None, str]] = {}
        self._paired: dict[_Key, list[LedgerRecord]] = {}
        self._ords: list[LedgerRecord] = []
        self._lookup = lookup
        self._looked_up: set[_Key] = set()
        for unit, kind, year, lopenr, file in lopenrs:
            self._lopenrs.setdefault((unit, kind, year), {}).setdefault(lopenr, file)
        for record in records:
            if record.status == Status.ACCEPTED:
                self.add(record)

    def _group(self, unit: str, msg_type: str, year: int) -> dict[int | None, str]:
        """The group's lopenrs with the file that holds each, committed before this run's."""
        key = (unit, msg_type, year)
        group = self._lopenrs.get(key, {})
        if self._lookup is not None and msg_type not in PAIRED and key not in self._looked_up:
            self._looked_up.add(key)
            committed: dict[int | None, str] = {}
            for record in self._lookup.accepted(unit, msg_type, year):
                committed.setdefault(record.lopenr, record.file)
            group = self._lopenrs[key] = group | committed  # a committed owner comes first
        return group

    def lopenr_owner(self, unit: str, msg_type: str, year: int, lopenr: int) -> str | None:
        return self._group(unit, msg_type, year).get(lopenr)

    def newest_lopenr(self, unit: str, msg_type: str, year: int) -> int | None:
        return max((v for v in self._group(unit, msg_type, year) if v is not None), default=None)

    def partner(self, unit: str, msg_type: str, year: int, period_to: str) -> LedgerRecord | None:
        """The newest accepted other half (ord <-> ide) of the same unit and period."""
        other = "NPR_IDE" if msg_type == "NPR_ORD" else "NPR_ORD"
        group = self._paired.get((unit, other, year), [])
        candidates = [r for r in group if r.period_to == period_to]
        return max(candidates, key=lambda r: (r.lopenr or 0, r.submission_id), default=None)

    def add(self, record: LedgerRecord) -> None:
        key = (record.unit, record.message_type, record.year)
        self._lopenrs.setdefault(key, {}).setdefault(record.lopenr, record.file)
        if record.message_type in PAIRED:
            self._paired.setdefault(key, []).append(record)
        if record.message_type == "NPR_ORD":
            self._ords.append(record)

    def deliveries(self) -> list[Delivery]:
        """Every accepted ord with the newest accepted ide of its unit and period, if any."""
        return [
            Delivery(r, self.partner(r.unit, "NPR_ORD", r.year, r.period_to)) for r in self._ords
        ]


class _Pending:
    """Ledger records and failed markers waiting for their commit (one transaction), and the
    accepted daily files whose events commit with them (one intake batch)."""

    def __init__(self, home: Home, release: Callable[[], None] | None = None) -> None:
        self.home = home
        self.release = release  # let go of the state file before writing to it
        self.records: list[LedgerRecord] = []
        self.failed: list[LedgerRecord] = []
        self.daily: list[list[DailyFile]] = [[]]  # one intake batch per list
        self._closed: set[str] = set()  # units with a closing in the open batch
        self.batches = 0  # daily batches committed by this run
        self.parts: list[lake.Part] = []  # accepted monthly files' tables for the next batch
        self.lake_tables: set[str] = set()  # monthly tables this run committed to
        # where this run's monthly files' tables are (staged, then published): an ide's check
        # against its ord reads them without a look-up in the Delta log
        self.located: dict[tuple[str, str], Path] = {}
        # the key digests of this run's accepted ords and ides (ReadResult.record_keys): a
        # partner's equal digest spares the ord/ide check its read of both key sets
        self.record_keys: dict[str, bytes] = {}

    def __len__(self) -> int:
        return len(self.records) + len(self.failed) + sum(len(files) for files in self.daily)

    def add_parts(self, parts: dict[str, lake.Part], read: ReadResult, sid: str) -> None:
        """Queue an accepted monthly file's tables for the next batch; keep its key digest."""
        if read.record_keys is not None:
            self.record_keys[sid] = read.record_keys
        self.parts += parts.values()
        self.located.update({(p.submission_id, p.table): p.path for p in parts.values()})

    def table_file(self, submission_id: str, table: str) -> Path | None:
        """A monthly submission's file of ``table``: this run's, or the lake's committed one."""
        found = self.located.get((submission_id, table))
        if found is None:
            found = lake.part_files(self.home, table, [submission_id]).get(submission_id)
        return found

    def _publish(self) -> BatchCommit | None:
        """The monthly parts into the lake under a new batch (one Delta commit per table);
        the batch row to commit with the records, or None when there are none."""
        if not self.parts:
            return None
        parts, self.parts = self.parts, []
        number = lake.begin(self.home, parts)
        versions = lake.publish(self.home, number, parts)
        folders: dict[str, Path] = {}  # each table's batch folder, built once (not per part)
        for p in parts:
            if p.table not in folders:
                folders[p.table] = lake.batch_folder(self.home, p.table, number)
            self.located[(p.submission_id, p.table)] = folders[p.table] / f"{p.name}.parquet"
        for folder in {p.path.parent for p in parts}:  # a submission's, or a chunk's
            shutil.rmtree(folder, ignore_errors=True)
        self.lake_tables.update(versions)
        return BatchCommit(number, len({p.submission_id for p in parts}), versions)

    def add_daily(self, file: DailyFile) -> None:
        """Queue an accepted daily file for its batch. A unit's file after its own closing
        starts the next batch: a closing is checked against the state as known at its batch
        (``consolidated.state_counts``), so nothing the unit sent after it may share that batch
        (an inbox holding a month's closing and the next month's files, as a catch-up has)."""
        unit = file.record.unit or ""
        if unit in self._closed:
            self.daily.append([])
            self._closed = set()
        self.daily[-1].append(file)
        if file.record.message_type == "NPR_AVSLUTNING":
            self._closed.add(unit)

    def flush(self, by_id: dict[str, SubmissionResult]) -> None:
        """Commit them; a record the database refuses (its lopenr is claimed by another
        accepted record: only if HOME's lock was bypassed) becomes a failed file instead."""
        if not len(self):
            return
        if self.release is not None:
            self.release()
        sync_archive(self.home.archive)  # the files of these records are on disk before them
        segments = [files for files in self.daily if files]
        self.daily, self._closed = [[]], set()
        with held_writes():  # the batches' state writes share one opening of the file
            monthly = self._publish()
            if monthly is not None or not segments:  # else the records go with the first one
                self._write(monthly, by_id)
            for files in segments:  # each its own batch, in order, with its files' ledger rows
                batch = prepare_batch(self.home, files)
                self.records += [typed(f.record) for f in files]
                self.batches += 1
                self._write(batch, by_id)
        if self.failed:
            self.flush(by_id)

    def _write(self, batch: BatchCommit | None, by_id: dict[str, SubmissionResult]) -> None:
        """The pending records, failed markers and ``batch`` in one DuckDB transaction."""
        refused = write_records(self.home, self.records, self.failed, batch)
        self.records, self.failed = [], []
        if refused:
            self.failed = [_claim_refused(self.home, r, by_id) for r in refused]


def _claim_refused(
    home: Home, refused: LopenrClaimed, by_id: dict[str, SubmissionResult]
) -> LedgerRecord:
    record = refused.record
    _discard(home, record.submission_id)
    found = reason("internal_error", str(refused))
    failed = _failed_record(record.submission_id, record.checksum, record.file, record.size,
                            record.received, found)  # fmt: skip
    by_id[record.submission_id] = SubmissionResult.of(failed, [found])
    return failed


def _failed_record(
    sid: str, checksum: str, file: str, size: int, received: str, found: Reason
) -> LedgerRecord:
    return LedgerRecord(
        submission_id=sid,
        checksum=checksum,
        file=file,
        size=size,
        received=received,
        status=Status.FAILED,
        reasons=[found.as_json() | {"severity": found.severity}],
    )


def _commit_or_fail(
    home: Home, task: _Task, outcome: _Outcome, state: _LedgerState, pending: _Pending
) -> SubmissionResult:
    """Commit the file, or record it as failed (not final) if anything on our side broke, its
    traceback kept in HOME's error log (the ledger row keeps only the error's type and text)."""
    if outcome.error is None:
        try:
            return _commit(home, task, outcome, state, pending)
        except Exception as exc:  # noqa: BLE001 - one file's failure must stay its own
            outcome = _failed(exc)
    _discard(home, task.submission_id)
    log_error(home.root, f"intake: {task.file} ({task.submission_id}) failed", outcome.trace)
    found = reason("internal_error", outcome.error or "")
    failed = _failed_record(task.submission_id, task.checksum, task.file, task.size,
                            task.received, found)  # fmt: skip
    pending.failed.append(failed)
    return SubmissionResult.of(failed, [found])


def _commit(
    home: Home, task: _Task, outcome: _Outcome, state: _LedgerState, pending: _Pending
) -> SubmissionResult:
    """Ledger-level checks, the XPR_VAL report, then the ledger record (the commit mark,
    committed with the next batch of records)."""
    if outcome.daily is not None:
        return _commit_daily(home, task, outcome.daily, state, pending)
    read = outcome.read
    header = read.header
    unit = read.gate.unit
    record = _new_record(
        task,
        unit,
        header,
        version=read.version,
        year=read.year,
        period_from=_iso(read.date_attr("fraDatoPeriode")),
        period_to=_iso(read.date_attr("tilDatoPeriode")),
        extracted=_iso(read.date_attr("uttakDato")),
        lopenr=read.lopenr,
        episodes=read.episodes,
        patients=read.patients,
    )
    reasons = list(read.reasons) + list(read.gate.reasons)
    checks = partial(_ledger_checks, record, state, outcome, pending)
    _decide(record, reasons, read.gate.test_route, checks)
    if record.status == Status.REJECTED:
        _discard(home, task.submission_id)
    record.reasons = [r.as_json() | {"severity": r.severity} for r in reasons]
    if record.status != Status.ACCEPTED:
        record.episodes = 0
    _write_report(home, record, reasons, read)
    quality = answer_test_file(home, record, read) if read.gate.test_route else None
    pending.records.append(typed(record))
    if record.status == Status.ACCEPTED:
        state.add(record)
        pending.add_parts(outcome.lake, read, record.submission_id)
    return SubmissionResult.of(record, reasons, quality)


def _new_record(
    task: _Task, unit: dict[str, str] | None, header: Header | None, **fields: object
) -> LedgerRecord:
    """An accepted record of the task's file, its sender from the registry or the header."""
    return LedgerRecord(
        submission_id=task.submission_id,
        checksum=task.checksum,
        file=task.file,
        size=task.size,
        received=task.received,
        status=Status.ACCEPTED,
        unit=unit["reshID"] if unit else None,
        her=unit["herID"] if unit else _first(header, "HER"),
        orgnr=unit["orgnr"] if unit else _first(header, "ENH"),
        message_type=header.msg_type if header else None,
        receiver=",".join(header.receiver.get("HER", [])) if header else None,
        **fields,  # type: ignore[arg-type]
    )


def _decide(
    record: LedgerRecord,
    reasons: list[Reason],
    test_route: str | None,
    checks: Callable[[], list[Reason]],
) -> None:
    """The file's status: test route (whatever its errors), rejected by the reasons so far, or
    by ``checks`` (run only for a file that would otherwise be accepted), else accepted."""
    if test_route:  # answered in full, errors and all, and never produced
        reasons.append(reason(test_route, severity="info"))
        record.status = Status.TEST
    elif any(r.severity == "error" for r in reasons):
        record.status = Status.REJECTED
    else:
        reasons += checks()
        if any(r.severity == "error" for r in reasons):
            record.status = Status.REJECTED


def _commit_daily(
    home: Home, task: _Task, daily: DailyRead, state: _LedgerState, pending: _Pending
) -> SubmissionResult:
    """A daily file: the gate's and reader's reasons and the lopenr rules decide; an accepted
    file waits for its batch (events, findings and reports: :mod:`.daily_batch`), any other
    gets its XPR_VAL now."""
    unit, header = daily.gate.unit, daily.header
    record = _new_record(
        task, unit, header, version=daily.version, year=daily.year, lopenr=daily.lopenr,
        period_from=_iso(xs_date_attr(daily.attrs, "fraDatoPeriode")),
        period_to=_iso(xs_date_attr(daily.attrs, "tilDatoPeriode")),
    )  # fmt: skip
    reasons = list(daily.reasons) + list(daily.gate.reasons)
    _decide(record, reasons, daily.gate.test_route, lambda: _lopenr_rules(record, state))
    _trial_period(record, reasons, daily)
    record.reasons = [r.as_json() | {"severity": r.severity} for r in reasons]
    info = _info(record, unit["name"] if unit else None, 0, 0)
    if record.status == Status.ACCEPTED:
        state.add(record)
        pending.add_daily(DailyFile(record, daily.tables, info, reasons, daily.findings))
    else:
        folder = home.feedback / record.submission_id
        write_xpr_val(folder, info, reasons)
        if daily.findings:  # a test or trial report is answered in full
            write_xpr_err(folder, info, daily.findings, [])
            summary = report_summary(daily.findings)
            reasons += summary
            record.reasons += [r.as_json() | {"severity": r.severity} for r in summary]
        pending.records.append(typed(record))
    return SubmissionResult.of(record, reasons)


def _trial_period(record: LedgerRecord, reasons: list[Reason], daily: DailyRead) -> None:
    """A file its type's calendar keeps out of production on its day of receipt (the
    forløpsmelding before 1 June 2026) becomes a test file: answered in full, never stored."""
    if record.status != Status.ACCEPTED or daily.message is None:
        return
    received = datetime.fromisoformat(record.received).date()
    calendar = daily.message.calendar
    if calendar is not None and not reaches_production(daily.message, received):
        phase = reception_phase(daily.message, received)
        detail = f"Received {received} ({phase}); production from {calendar.production_from}."
        reasons.append(reason("trial_period", detail, severity="info"))
        record.status = Status.TEST


def _lopenr_rules(record: LedgerRecord, state: _LedgerState) -> list[Reason]:
    """The lopenr must be unused and not far above the current one of its unit, type, year."""
    unit, msg_type, year = record.unit, record.message_type, record.year
    assert unit and msg_type and year and record.lopenr is not None
    owner = state.lopenr_owner(unit, msg_type, year, record.lopenr)
    if owner:
        return [reason("lopenr_reused", f"lopenr {record.lopenr} was used by {owner}.")]
    newest = state.newest_lopenr(unit, msg_type, year)
    if newest is not None and record.lopenr > newest + LOPENR_JUMP:
        return [reason("lopenr_jump", f"lopenr {record.lopenr}; current: {newest}.")]
    return []


def _ledger_checks(
    record: LedgerRecord, state: _LedgerState, outcome: _Outcome, pending: _Pending
) -> list[Reason]:
    refused = _lopenr_rules(record, state)
    if refused:
        return refused
    unit, msg_type, year = record.unit, record.message_type, record.year
    assert unit and msg_type and year and record.lopenr is not None
    newest = state.newest_lopenr(unit, msg_type, year)
    found: list[Reason] = []
    if newest is not None and newest > record.lopenr:
        found.append(reason("older_than_current", f"Current lopenr: {newest}.", severity="info"))
    partner = state.partner(unit, msg_type, year, record.period_to or "")
    if partner is not None:
        mismatch = _ident_mismatch(record, outcome, partner, pending)
        if mismatch:
            found.append(mismatch)
    return found


def _ident_mismatch(
    record: LedgerRecord, outcome: _Outcome, partner: LedgerRecord, pending: _Pending
) -> Reason | None:
    """Compare the patients of an ord with the idents of its ide (both ways): by their key
    digests when both have one (equal: nothing to read), else by the sets, which name
    examples. A partner committed by an earlier run has no digest here."""
    digest = outcome.read.record_keys
    if digest is not None and digest == pending.record_keys.get(partner.submission_id):
        return None
    table, _ = PAIRED_KEYS[record.message_type or ""]
    part = outcome.lake.get(table)
    own = _patient_set(part.path if part else None, record.message_type or "", record.submission_id)
    table, _ = PAIRED_KEYS[partner.message_type or ""]
    other_path = pending.table_file(partner.submission_id, table)
    other = _patient_set(other_path, partner.message_type or "", partner.submission_id)
    patients, idents = (own, other) if record.message_type == "NPR_ORD" else (other, own)
    without_ident = sorted(patients - idents)
    without_patient = sorted(idents - patients)
    if not without_ident and not without_patient:
        return None
    detail = (
        f"{len(without_ident)} patient(s) in ord without ident"
        f"{' (e.g. ' + ', '.join(without_ident[:EXAMPLES]) + ')' if without_ident else ''}; "
        f"{len(without_patient)} ident(s) without a patient in ord"
        f"{' (e.g. ' + ', '.join(without_patient[:EXAMPLES]) + ')' if without_patient else ''}."
    )
    return reason("ide_mismatch", detail, severity="warning")


def _patient_set(path: Path | None, msg_type: str, submission_id: str) -> set[str]:
    """The patient numbers of a submission's rows in its patients (ord) or idents (ide) file
    (a chunk's file holds other submissions' too)."""
    if path is None or not path.exists():
        return set()
    column = PAIRED_KEYS[msg_type][1]
    return set(lake.rows_of(path, submission_id, [column]).column(0).to_pylist())


def _write_report(
    home: Home, record: LedgerRecord, reasons: list[Reason], read: ReadResult
) -> None:
    unit_name = read.gate.unit["name"] if read.gate.unit else None
    info = _info(record, unit_name, read.episodes, read.patients)
    write_xpr_val(home.feedback / record.submission_id, info, reasons)


def _info(
    record: LedgerRecord, unit_name: str | None, episodes: int, patients: int
) -> SubmissionInfo:
    """What a report says about the file it answers."""
    return SubmissionInfo(
        submission_id=record.submission_id,
        file=record.file,
        received=record.received,
        status=str(record.status),
        unit=record.unit,
        unit_name=unit_name,
        message_type=record.message_type,
        version=record.version,
        period=f"{record.period_from}/{record.period_to}" if record.period_to else None,
        lopenr=record.lopenr,
        checksum=record.checksum,
        size=record.size,
        episodes=episodes,
        patients=patients,
    )


def _first(header, kind: str) -> str | None:
    if header is None:
        return None
    values = header.sender.get(kind, [])
    return values[0] if values else None


def _iso(value: date | None) -> str | None:
    return value.isoformat() if value else None
