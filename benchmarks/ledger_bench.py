"""The ledger table's costs (issue 13): N records written one transaction each, loading the
ledger as a DataFrame, and ``has_record`` lookups. ``python benchmarks/ledger_bench.py [N]``."""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from pathlib import Path

from npr_pipeline.home import Home
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


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 2000)
