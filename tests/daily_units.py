"""A daily unit in a test HOME: a one-unit registry on the daily route, and a sender whose
files (real XML, the synth's renderer) are read by the real reader and committed as intake
batches with their ledger rows (daily intake itself belongs to the events branch)."""

from __future__ import annotations

import csv
import hashlib
from datetime import date
from pathlib import Path

import pyarrow as pa

from npr_pipeline.home import Home
from npr_pipeline.store.batches import begin_batch
from npr_pipeline.store.events import append_events
from npr_pipeline.store.ledger import BatchCommit, LedgerRecord, write_records
from tests.daily_events import UNIT, read_events, write_file
from tests.intake_files import prepare_test_home

REGISTRY = {
    "reshID": UNIT, "orgnr": "999888771", "herID": "8000001", "name": "Helse Eksempel HF",
    "unit_type": "HF", "parent_trust": "", "rhf": "HSO", "komnr": "0301",
    "ownership": "public", "financing": "public", "sector": "somatic", "fagomrade": "050",
    "isf_agreement": "true", "message_types": "NPR_ORD;NPR_IDE", "size_weight": "1.0",
    "valid_from": "2002-01-01", "valid_to": "", "route": "daily",
}  # fmt: skip


def daily_home(tmp_path: Path) -> Home:
    """A test HOME whose registry has one unit, ``UNIT``, on the daily route."""
    registry = tmp_path / "registry.csv"
    with open(registry, "w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(REGISTRY))
        writer.writeheader()
        writer.writerow(REGISTRY)
    return prepare_test_home(Home(root=tmp_path / "home"), registry)


class Unit:
    """Sends the unit's daily files, each intake batch committed with its ledger rows."""

    def __init__(self, home: Home, folder: Path) -> None:
        self.home, self.folder, self.lopenr = home, folder, 0

    def send(self, *files: tuple[str, list]) -> int:
        paths = []
        for kind, records in files:
            self.lopenr += 1
            paths.append(write_file(self.folder, kind, self.lopenr, records, day=date(2026, 3, 31)))
        tables: dict = {}
        for path in paths:
            for name, table in read_events(path).items():
                tables.setdefault(name, []).append(table)
        batch = begin_batch(self.home)
        versions = append_events(
            self.home, batch, {n: pa.concat_tables(t) for n, t in tables.items()}
        )
        write_records(
            self.home,
            [_ledger_row(p) for p in paths],
            batch=BatchCommit(batch, len(paths), versions),
        )
        return batch


def _ledger_row(path: Path) -> LedgerRecord:
    data = path.read_bytes()
    kind, lopenr = path.stem.split("_")[2:4]
    return LedgerRecord(
        submission_id=path.stem, checksum=hashlib.sha256(data).hexdigest(), file=str(path),
        size=len(data), received="2026-03-31T23:59:00", status="accepted", unit=UNIT,
        message_type=f"NPR_{kind.upper()}", year=2026, lopenr=int(lopenr),
    )  # fmt: skip
