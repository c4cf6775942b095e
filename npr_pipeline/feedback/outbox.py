"""The outbox: every answer (XPR_VAL, XPR_ERR) as a message to the sender's EDI address.

What the EDI transport carries: each report XML wrapped in a KITH MsgHead v1.2 header, from
NPR (production, or the validation service for a file sent there) to the sender's HER id (the
registered unit's, else the one in the file's own header), written atomically to
``HOME/outbox/edi/<message id>.xml``. The message id is derived from the submission, the kind
and the report's bytes, so a rerun that rewrites the same report posts nothing new, while a
report that changed (an XPR_ERR checked again once the ide arrived) is posted again.

Each message has a state record, ``HOME/outbox/state/<message id>.json``: ``pending`` (in the
outbox for the EDI transport to take) or ``undeliverable`` (the sender has no HER id).
``HOME/outbox/posted.txt`` lists the submissions whose answers have been posted, one id a line,
so what a killed intake committed but did not post is found and posted by the next one.
``HOME/outbox/posted-through.txt`` holds how many records the ledger held when every one of
them had been posted: while the ledger holds only those and the run's own, neither the ledger's
ids nor ``posted.txt`` (both a line per file of the year) need reading.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from npr_pipeline.atomic import write_bytes, write_text
from npr_pipeline.envelope import (
    NPR_PRODUCTION,
    NPR_VALIDATION,
    VALIDATION_HER,
    Party,
    close_envelope,
    open_envelope,
)
from npr_pipeline.feedback.reports import XPR_ERR, XPR_VAL
from npr_pipeline.home import Home
from npr_pipeline.store.ledger import LedgerRecord
from npr_pipeline.store.ledger import submission_ids as ledger_ids

KINDS = (XPR_VAL, XPR_ERR)
DISPLAY_NAMES = {
    XPR_VAL: "Tilbakemelding NPR: skjemavalidering",
    XPR_ERR: "Tilbakemelding NPR: innholdskontroll",
}
HISTORY_DAYS = 7
_SID = re.compile(r"[0-9a-f]{16}")
_JSON = json.JSONEncoder(ensure_ascii=False).encode  # one value, by the C encoder
_IDS = uuid.UUID("7f1f2c1e-5c55-4b0e-9d55-6e0a8f3f1a14")  # namespace of outbox message ids


@dataclass(frozen=True)
class Posted:
    """One answer in the outbox (or why it could not be addressed)."""

    message_id: str
    submission_id: str
    kind: str
    state: str  # pending | undeliverable
    path: Path | None


def outbox(home: Home) -> Path:
    """``HOME/outbox``: what leaves the register (EDI messages, e-mails) and their states."""
    return home.root / "outbox"


def scratch(home: Home) -> Path:
    """``HOME/outbox/.tmp``: the temporary files of every outbox write (see ``atomic.py``), so
    what a killed run left is found there, never by walking the outbox's millions of files."""
    return outbox(home) / ".tmp"


def state_file(home: Home, item_id: str) -> Path:
    """Where the state record of an outbox message or e-mail is."""
    return outbox(home) / "state" / f"{item_id}.json"


def write_state(home: Home, item_id: str, state: dict, durable: bool = True) -> None:
    """Replace an item's state record, atomically (``durable``: fsynced, see post_answers)."""
    write_text(state_file(home, item_id), state_text(state), durable=durable, scratch=scratch(home))


def state_text(state: dict) -> str:
    """A state record as ``json.dumps(state, ensure_ascii=False, indent=1)`` writes it.

    An indent sends ``json`` to its pure-Python encoder (~0.1 ms a record, a record per answer);
    a flat record, every message's, is put together from the C encoder's values instead, to
    the same text."""
    flat = all(isinstance(k, str) and not isinstance(v, dict | list | tuple)
               for k, v in state.items())  # fmt: skip
    if not state or not flat:
        return json.dumps(state, ensure_ascii=False, indent=1)
    return "{\n" + ",\n".join(f" {_JSON(k)}: {_JSON(v)}" for k, v in state.items()) + "\n}"


def read_state(home: Home, item_id: str) -> dict | None:
    """An item's state record, or None before it has one."""
    path = state_file(home, item_id)
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None


def unposted(home: Home, submission_ids: set[str]) -> set[str]:
    """The submissions of ``submission_ids`` (committed ones) not posted yet.

    A HOME's first run with an outbox counts what the ledger received over ``HISTORY_DAYS``
    before as posted (its units had those answers through ``npr feedback``; years of answers
    must not leave now), and posts the rest: also what a killed first run committed without
    posting.
    """
    path = outbox(home) / "posted.txt"
    if not path.exists():
        old = ledger_ids(home, received_before=datetime.now(UTC) - timedelta(days=HISTORY_DAYS))
        write_text(path, "".join(f"{sid}\n" for sid in sorted(old)), scratch=scratch(home))
    # a kill while appending leaves a partial last line: not an id, so read as not posted
    posted = {line for line in path.read_text(encoding="ascii").split() if _SID.fullmatch(line)}
    return submission_ids - posted


def posted_through(home: Home) -> int | None:
    """How many ledger records had all been posted at the end of the last posting run (None:
    unknown, e.g. before the first run, or a run killed before it wrote the count)."""
    path = outbox(home) / "posted-through.txt"
    text = path.read_text(encoding="ascii").strip() if path.is_file() else ""
    return int(text) if text.isdigit() else None


def mark_posted_through(home: Home, records: int) -> None:
    """Record that the ledger's first ``records`` records (all it held) have been posted."""
    write_text(outbox(home) / "posted-through.txt", f"{records}\n", scratch=scratch(home))


def mark_posted(home: Home, submission_ids: list[str]) -> None:
    """Add submissions to ``posted.txt`` (appended; one fsync for the lot)."""
    path = outbox(home) / "posted.txt"
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a", encoding="ascii") as fh:
        fh.write("".join(f"\n{sid}\n" for sid in submission_ids))
        fh.flush()
        os.fsync(fh.fileno())


def post_answers(home: Home, record: LedgerRecord, unit_name: str | None) -> list[Posted]:
    """Put the submission's answers that are not in the outbox yet into it.

    Written without fsync, like the reports they wrap (``atomic.py``): an fsync costs ~8 ms
    and intake posts two messages per file, and both can be made again from the reports.
    """
    posted = []
    folder, box, tmp = home.feedback / record.submission_id, outbox(home), scratch(home)
    for kind in KINDS:
        try:  # one system call where a test and a read were two
            data = (folder / f"{kind}.xml").read_bytes()
        except FileNotFoundError:
            continue
        digest = hashlib.sha256(data).hexdigest()
        message_id = str(uuid.uuid5(_IDS, f"{record.submission_id}/{kind}/{digest}"))
        record_path = box / "state" / f"{message_id}.json"
        if record_path.is_file():  # posted before: a rerun posts nothing new
            continue
        state = {"id": message_id, "channel": "edi", "submission_id": record.submission_id,
                 "kind": kind, "her": record.her, "report_sha256": digest}  # fmt: skip
        path = None
        if record.her:
            path = box / "edi" / f"{message_id}.xml"
            message = wrap(data, kind, message_id, record, unit_name)
            write_bytes(path, message, durable=False, scratch=tmp)
            state |= {"state": "pending", "file": f"{box.name}/edi/{message_id}.xml"}
        else:
            state |= {"state": "undeliverable", "why": "the sender has no HER id"}
        write_text(record_path, state_text(state), durable=False, scratch=tmp)
        posted.append(Posted(message_id, record.submission_id, kind, state["state"], path))
    return posted


def wrap(
    report: bytes, kind: str, message_id: str, record: LedgerRecord, name: str | None
) -> bytes:
    """A report XML inside a MsgHead addressed to the sender."""
    receivers = (record.receiver or "").split(",")
    sender = NPR_VALIDATION if VALIDATION_HER in receivers else NPR_PRODUCTION
    receiver = Party(name or f"HER {record.her}", her=record.her, orgnr=record.orgnr)
    body = report.split(b"?>", 1)[1].strip() if report.startswith(b"<?xml") else report
    head = open_envelope(
        kind, message_id, datetime.now(UTC).replace(microsecond=0), sender, receiver,
        DISPLAY_NAMES[kind],
    )  # fmt: skip
    return (
        b'<?xml version="1.0" encoding="UTF-8"?>\n'
        + head.encode("utf-8")
        + body
        + close_envelope().encode("utf-8")
    )
