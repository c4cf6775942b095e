"""The ledger table's costs (issue 13): N records written one transaction each, loading the
ledger as a DataFrame, and ``has_record`` lookups. ``python benchmarks/ledger_bench.py [N]``.

The per-intake costs that grew with the ledger: ``python -m benchmarks.ledger_bench --intake
[RECORDS] [FILES]``: a HOME whose ledger holds RECORDS synthetic daily records (default
1,000,000; built once into ``.bench/``), its warehouse copy and ``posted.txt`` in step; FILES
(default 8) real daily files of the daily bench's small set through ``intake_directory`` (one
worker, in this process), twice on fresh copies of that HOME. Prints the CPU seconds of the
whole intake and of each ledger-sized step."""

from __future__ import annotations

import importlib
import os
import shutil
import statistics
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

from benchmarks.daily_bench import _inbox, dataset
from benchmarks.intake_bench import CACHE
from npr_pipeline.feedback.outbox import unposted
from npr_pipeline.home import Home
from npr_pipeline.intake.run import intake_directory
from npr_pipeline.registry import import_registry
from npr_pipeline.settings import TEST, record_environment
from npr_pipeline.store import state
from npr_pipeline.store.ledger import (
    LedgerRecord,
    _commit,
    _prepare,
    _row,
    has_record,
    known_submissions,
    load_ledger,
    load_records,
    write_record,
    write_records,
)
from npr_pipeline.warehouse import sync_intake


def _record(i: int) -> LedgerRecord:
    return LedgerRecord(
        submission_id=f"{i:016x}",
        checksum="0" * 64,
        file=f"unit{i % 500}_{i}.xml",
        size=12_345,
        received="2026-03-01T10:00:00+00:00",
        status="accepted",
        unit=f"{100000 + i % 500}",
        her="123",
        orgnr="999999999",
        message_type="NPR_ORD",
        version="1",
        year=2026,
        period_from="2026-01-01",
        period_to="2026-03-31",
        extracted="2026-04-02",
        lopenr=i // 500 + 1,
        receiver="4210",
        episodes=8,
        patients=5,
        reasons=[{"code": "older_than_current", "detail": "x", "severity": "info"}],
    )


def _ms(seconds: list[float]) -> str:
    return f"median {statistics.median(seconds) * 1e3:.2f} ms"


def main(n: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        home = Home(root=Path(tmp)).ensure()
        records = [_record(i) for i in range(n + 200)]
        # one transaction per record on a connection held open (as intake could)
        times = []
        with state.writer(home, _prepare) as con:
            for record in records[:n]:
                row = _row(record)
                t = time.perf_counter()
                _commit(con, [row], [])
                times.append(time.perf_counter() - t)
        print(f"{n} records, one transaction each, file held open: {_ms(times)} per record")
        # write_record: one transaction, opening and closing the file each time
        times = []
        for record in records[n : n + 100]:
            t = time.perf_counter()
            write_record(home, record)
            times.append(time.perf_counter() - t)
        print(f"write_record (opens the file each time): {_ms(times)} per record")
        # intake's way: COMMIT_FILES records per transaction, one opening each
        times = []
        batch = records[n + 100 :]
        for i in range(0, len(batch), 20):
            t = time.perf_counter()
            write_records(home, batch[i : i + 20])
            times.append(time.perf_counter() - t)
        print(f"write_records, 20 records per call: {_ms(times)} per call")
        for what, fn in (("load_ledger", load_ledger), ("load_records", load_records)):
            runs = []
            for _ in range(5):
                t = time.perf_counter()
                fn(home)
                runs.append(time.perf_counter() - t)
            print(f"{what} ({n + 200} rows): {_ms(runs)}")
        runs = []
        for i in range(0, n, max(1, n // 100)):
            t = time.perf_counter()
            assert has_record(home, f"{i:016x}")
            runs.append(time.perf_counter() - t)
        print(f"has_record (opens the file read-only): {_ms(runs)}")
        ids = [f"{i:016x}" for i in range(0, 2 * n, 2)]
        t = time.perf_counter()
        known = known_submissions(home, ids)
        print(f"known_submissions for {len(ids)} ids: {(time.perf_counter() - t) * 1e3:.1f} ms")
        assert len(known) == len([i for i in range(0, 2 * n, 2) if i < n + 200])


# --- an intake of a handful of files on top of a large ledger ------------------------------


# module, attribute, label: the steps whose cost grew with the ledger (those that exist in the
# code measured, so the same script measures a checkout from before the change)
_STEPS = (
    ("npr_pipeline.intake.run", "load_records", "load_records (whole ledger)"),
    ("npr_pipeline.intake.run", "_LedgerState", "_LedgerState"),
    ("npr_pipeline.intake.run", "record_count", "record_count (look up or read?)"),
    ("npr_pipeline.store.ledger", "LedgerLookup.accepted_of_types", "paired records (ord, ide)"),
    ("npr_pipeline.store.ledger", "LedgerLookup.record", "duplicate look-ups"),
    ("npr_pipeline.store.ledger", "LedgerLookup.accepted", "lopenr group look-ups"),
    ("npr_pipeline.intake.run", "load_ledger", "load_ledger in intake"),
    ("npr_pipeline.intake.run", "sync_intake", "sync_intake (warehouse, with its reads)"),
    ("npr_pipeline.feedback.deliver", "unposted", "unposted (posted.txt)"),
    ("npr_pipeline.feedback.deliver", "ledger_ids", "ledger submission ids"),
    ("npr_pipeline.feedback.deliver", "record_count", "record_count (posted through?)"),
)


def _pad(home: Home, records: int) -> None:
    """RECORDS accepted daily records of 40,000 other units, in one SQL statement (the ledger's
    own rows, claims and index; the Python write path would take minutes to build them)."""
    with state.transaction(home, _prepare) as con:
        con.execute(
            "INSERT INTO ledger SELECT printf('%016x', i), printf('%064x', i), "
            "'padded_' || i || '.xml', 4000, strftime(TIMESTAMP '2026-01-02' + "
            "to_seconds(i // 40), '%Y-%m-%dT%H:%M:%S+00:00'), 'accepted', "
            "CAST(800000 + i % 40000 AS VARCHAR), '1', '999999999', "
            "['NPR_KONTAKT', 'NPR_HENVISNING', 'NPR_IDENT', 'NPR_KONTAKT'][(i // 40000) % 4 + 1],"
            " '58.0.1', 2026, NULL, NULL, NULL, i // 40000 + 1, '4210', 3, 2, '[]', '' "
            "FROM range(?) t(i)",
            [records],
        )
        con.execute(
            "INSERT INTO lopenr_claims SELECT unit, message_type, year, lopenr, submission_id "
            "FROM ledger WHERE file LIKE 'padded_%'"
        )


def _template(records: int, registry: Path) -> Path:
    """The padded HOME, built once: registry, ledger, warehouse copy, ``posted.txt`` and the
    count of records posted through (all of them; code from before that count ignores it)."""
    root = CACHE / f"ledger-intake-{records}"
    if not (root / "ready").exists():
        shutil.rmtree(root, ignore_errors=True)
        home = Home(root=root).ensure()
        record_environment(home, TEST, "ledger bench")
        import_registry(home, registry)
        _pad(home, records)
        sync_intake(home, load_ledger(home))
        unposted(home, set())  # the first outbox run: the year so far counts as posted
        (root / "ready").write_text("")
    (root / "outbox" / "posted-through.txt").write_text(f"{records}\n")
    return root


def _timed_steps(times: dict[str, float]) -> None:
    """Wrap each step that exists so its CPU seconds add up in ``times``."""
    for module_name, attr, label in _STEPS:
        owner = importlib.import_module(module_name)
        path = attr.split(".")
        for part in path[:-1]:
            owner = getattr(owner, part, None)
        original = getattr(owner, path[-1], None) if owner is not None else None
        if original is None:
            continue

        def timed(*args, _original=original, _label=label, **kwargs):
            start = time.process_time()
            try:
                return _original(*args, **kwargs)
            finally:
                times[_label] = times.get(_label, 0.0) + time.process_time() - start

        setattr(owner, path[-1], timed)


def intake_main(records: int, files: int) -> None:
    folder, registry = dataset(20, date(2026, 3, 4), 30.0, 0)
    chosen = sorted(_inbox(folder, date(2026, 3, 4)).iterdir())[:files]
    template = _template(records, registry)
    times: dict[str, float] = {}
    _timed_steps(times)
    for run in (1, 2):
        with tempfile.TemporaryDirectory(dir=template.parent) as tmp:
            home = Home(root=Path(tmp) / "home")
            shutil.copytree(template, home.root, symlinks=True)
            inbox = Path(tmp) / "inbox"
            inbox.mkdir()
            for path in chosen:
                shutil.copyfile(path, inbox / path.name)
            times.clear()
            start = time.process_time()
            summary = intake_directory(home, inbox, workers=1)
            total = time.process_time() - start
        statuses = sorted({s.status for s in summary.submissions})
        print(f"run {run}: {len(chosen)} files ({', '.join(statuses)}) on {records:,} records: "
              f"intake {total:.2f} s CPU; load {os.getloadavg()[0]:.1f}")  # fmt: skip
        for label, seconds in times.items():
            print(f"  {label}: {seconds:.3f} s")


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--intake":
        numbers = [int(a) for a in sys.argv[2:]]
        intake_main(*(numbers + [1_000_000, 8][len(numbers) :]))
    else:
        main(int(sys.argv[1]) if len(sys.argv) > 1 else 2000)
