"""The submission ledger: one immutable JSON record per distinct file received.

A record is written last, after the lake and the reports, so it is the commit mark of a
submission: a run killed before it leaves no record and the file is simply processed again.
Records are never rewritten; "current" is derived from them (newest lopenr, then extraction
date, per unit, message type and year), so an older file arriving late never replaces a newer.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

import pandas as pd

from npr_pipeline.atomic import write_text
from npr_pipeline.home import Home

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


def record_path(home: Home, submission_id: str) -> Path:
    """One file per submission: concurrent writers never touch the same file."""
    return home.ledger / f"{submission_id}.json"


def has_record(home: Home, submission_id: str) -> bool:
    """Whether this exact file has been received and committed before."""
    return record_path(home, submission_id).exists()


def write_record(home: Home, record: LedgerRecord) -> None:
    """Commit a submission (atomic; never overwrites an existing record)."""
    path = record_path(home, record.submission_id)
    if path.exists():
        return
    write_text(path, json.dumps(asdict(record), sort_keys=True, ensure_ascii=False))


def read_record(home: Home, submission_id: str) -> LedgerRecord | None:
    """The record of one submission, or None."""
    path = record_path(home, submission_id)
    if not path.exists():
        return None
    return LedgerRecord(**json.loads(path.read_text(encoding="utf-8")))


def load_records(home: Home) -> list[LedgerRecord]:
    """Every committed record, in submission id order."""
    return [
        LedgerRecord(**json.loads(path.read_text(encoding="utf-8")))
        for path in sorted(home.ledger.glob("*.json"))
    ]


def load_ledger(home: Home) -> pd.DataFrame:
    """All records as a table (reasons flattened to their codes)."""
    rows = []
    for record in load_records(home):
        doc = asdict(record)
        doc["reason_codes"] = ",".join(str(r["code"]) for r in doc.pop("reasons"))
        rows.append(doc)
    frame = pd.DataFrame(rows, columns=list(LEDGER_COLUMNS))
    return frame.astype(
        {
            "size": "int64",
            "episodes": "int64",
            "patients": "int64",
            "year": "Int64",
            "lopenr": "Int64",
        }
    )


def current_submissions(ledger: pd.DataFrame) -> pd.DataFrame:
    """The current accepted production submission per unit, message type and year."""
    accepted = ledger[ledger["status"] == "accepted"].copy()
    if accepted.empty:
        return accepted
    ordered = accepted.sort_values(["lopenr", "extracted", "submission_id"])
    return ordered.groupby(["unit", "message_type", "year"], as_index=False).tail(1)
