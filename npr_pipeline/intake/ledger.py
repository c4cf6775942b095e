"""The submission ledger: one immutable JSON record per distinct file received.

A record is written last, after the lake and the reports, so it is the commit mark of a
submission: a run killed before it leaves no record and the file is simply processed again.
Records are never rewritten; "current" is derived from them (newest lopenr, then extraction
date, per unit, message type and year), so an older file arriving late never replaces a newer.

Every field is typed and bounded when the record is written (:func:`typed`), so reading the
ledger cannot fail on a record that was written: one absurd file must never make a HOME
unusable. A file that failed on our side (status ``failed``) is not a record: its marker lives
in ``ledger/failed/`` until a later intake commits the file for good.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields
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


INT64_MAX = 2**63 - 1
_INTS = ("size", "year", "lopenr", "episodes", "patients")
_TEXTS = tuple(f.name for f in fields(LedgerRecord) if f.name not in _INTS + ("reasons",))


class LedgerTypeError(ValueError):
    """A record field of the wrong type or out of range: a bug, refused before it is written."""


def typed(record: LedgerRecord) -> LedgerRecord:
    """The record with every field checked: texts are text, counts and numbers fit int64."""
    for name in _INTS:
        value = getattr(record, name)
        if value is None and name in ("year", "lopenr"):
            continue
        if type(value) is not int or not 0 <= value <= INT64_MAX:
            raise LedgerTypeError(f"ledger field {name}={value!r} is not an int64 count")
    for name in _TEXTS:
        value = getattr(record, name)
        if value is not None and not isinstance(value, str):
            raise LedgerTypeError(f"ledger field {name}={value!r} is not text")
    return record


def record_path(home: Home, submission_id: str) -> Path:
    """One file per submission: concurrent writers never touch the same file."""
    return home.ledger / f"{submission_id}.json"


def has_record(home: Home, submission_id: str) -> bool:
    """Whether this exact file has been received and committed before."""
    return record_path(home, submission_id).exists()


def failed_path(home: Home, submission_id: str) -> Path:
    """The marker of a file that failed on our side (replaced at every retry)."""
    return home.ledger / "failed" / f"{submission_id}.json"


def write_record(home: Home, record: LedgerRecord) -> None:
    """Commit a submission (atomic; never overwrites an existing record)."""
    path = record_path(home, record.submission_id)
    if path.exists():
        return
    write_text(path, json.dumps(asdict(typed(record)), sort_keys=True, ensure_ascii=False))
    failed_path(home, record.submission_id).unlink(missing_ok=True)


def write_failed(home: Home, record: LedgerRecord) -> None:
    """Mark a file as failed: archived, not final; the next intake reads it again."""
    doc = json.dumps(asdict(typed(record)), sort_keys=True, ensure_ascii=False)
    write_text(failed_path(home, record.submission_id), doc)


def read_record(home: Home, submission_id: str) -> LedgerRecord | None:
    """The record of one submission, or None."""
    path = record_path(home, submission_id)
    if not path.exists():
        return None
    return _record(path)


def load_records(home: Home) -> list[LedgerRecord]:
    """Every committed record, in submission id order."""
    return [_record(path) for path in sorted(home.ledger.glob("*.json"))]


def load_failed(home: Home) -> list[LedgerRecord]:
    """Files that failed on our side and have not been committed since."""
    return [_record(path) for path in sorted((home.ledger / "failed").glob("*.json"))]


def _record(path: Path) -> LedgerRecord:
    """A record as written; a number no int64 holds (written before records were typed) is
    read as unknown, so no old record can stop the ledger from loading."""
    doc = json.loads(path.read_text(encoding="utf-8"))
    for name in _INTS:
        value = doc.get(name)
        if value is not None and not (type(value) is int and abs(value) <= INT64_MAX):
            doc[name] = None if name in ("year", "lopenr") else 0
    return LedgerRecord(**{f.name: doc[f.name] for f in fields(LedgerRecord) if f.name in doc})


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
