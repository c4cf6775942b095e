"""The outbox: every answer (XPR_VAL, XPR_ERR) as a message to the sender's EDI address.

What the EDI transport carries: each report XML wrapped in a KITH MsgHead v1.2 header, from
NPR (production, or the validation service for a file sent there) to the sender's HER id (the
registered unit's, else the one in the file's own header), written atomically to
``HOME/outbox/edi/<message id>.xml``. The message id is derived from the submission, the kind
and the report's bytes, so a rerun that rewrites the same report posts nothing new, while a
report that changed (an XPR_ERR checked again once the ide arrived) is posted again.

Each message has a state, a row of ``outbox_items`` in the state database (:mod:`.states`):
``pending`` (in the outbox for the EDI transport to take) or ``undeliverable`` (the sender has
no HER id). A chunk's messages are written first (each file atomically), then their rows in one
transaction: a run killed between the two leaves files without rows, and its rerun, finding no
row, writes the same files again (same ids) and the rows.
``HOME/outbox/posted.txt`` lists the submissions whose answers have been posted, one id a line,
so what a killed intake committed but did not post is found and posted by the next one.
``HOME/outbox/posted-through.txt`` holds how many records the ledger held when every one of
them had been posted: while the ledger holds only those and the run's own, neither the ledger's
ids nor ``posted.txt`` (both a line per file of the year) need reading.
"""

from __future__ import annotations

import hashlib
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
from npr_pipeline.feedback.states import read_states, write_states
from npr_pipeline.home import Home
from npr_pipeline.store.ledger import LedgerRecord
from npr_pipeline.store.ledger import submission_ids as ledger_ids

KINDS = (XPR_VAL, XPR_ERR)
DISPLAY_NAMES = {
    XPR_VAL: "Tilbakemelding NPR: skjemavalidering",
    XPR_ERR: "Tilbakemelding NPR: innholdskontroll",
}
HISTORY_DAYS = 7
# The reports' bytes a chunk of answers keeps from their digest to their wrapping (an XPR_VAL
# is ~1-2 kB, read twice it cost an open and a read more per answer); past this, a report is
# read again to be wrapped: an XPR_ERR holds up to 10,000 findings, a chunk 2,000 records.
HELD_BYTES = 32 * 2**20
_SID = re.compile(r"[0-9a-f]{16}")
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


def post_answers(home: Home, records: list[LedgerRecord], names: dict[str, str]) -> list[Posted]:
    """Put the answers of ``records`` that are not in the outbox yet into it (``names``: the
    units' names, for the receiver's party).

    One keyed query finds what was posted before (a rerun posts nothing new), one transaction
    writes the new states, after their files. Files are written without fsync, like the
    reports they wrap (``atomic.py``): an fsync costs ~8 ms and intake posts two messages per
    file, and both can be made again from the reports.
    """
    feedback = os.fspath(home.feedback)
    answers = []  # (record, kind, report's path, its bytes if kept, digest, message id)
    budget = HELD_BYTES
    for record in records:
        folder = os.path.join(feedback, record.submission_id)
        for kind in KINDS:
            report = os.path.join(folder, f"{kind}.xml")
            try:  # one system call where a test and a read were two
                data: bytes | None = _read(report)
            except FileNotFoundError:
                continue
            digest = hashlib.sha256(data).hexdigest()
            message_id = str(uuid.uuid5(_IDS, f"{record.submission_id}/{kind}/{digest}"))
            budget -= len(data)
            if budget < 0:
                data = None  # read again when it is wrapped
            answers.append((record, kind, report, data, digest, message_id))
    before = read_states(home, [a[5] for a in answers]) if answers else {}
    box, tmp = outbox(home), scratch(home)
    posted, states = [], []
    for record, kind, report, data, digest, message_id in answers:
        if message_id in before:
            continue
        state = {"id": message_id, "channel": "edi", "submission_id": record.submission_id,
                 "kind": kind, "her": record.her, "report_sha256": digest}  # fmt: skip
        path = None
        if record.her:
            path = box / "edi" / f"{message_id}.xml"
            if data is None:  # as digested: its writers hold HOME's lock, as we do
                data = _read(report)
            message = wrap(data, kind, message_id, record, names.get(record.unit or ""))
            write_bytes(path, message, durable=False, scratch=tmp)
            state |= {"state": "pending", "file": f"{box.name}/edi/{message_id}.xml"}
        else:
            state |= {"state": "undeliverable", "why": "the sender has no HER id"}
        states.append(state)
        posted.append(Posted(message_id, record.submission_id, kind, state["state"], path))
    write_states(home, states)
    return posted


def _read(path: str) -> bytes:
    """A report's bytes, unbuffered (``Path.read_bytes`` built a Path and a buffered reader)."""
    with open(path, "rb", buffering=0) as fh:
        return fh.readall()


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
