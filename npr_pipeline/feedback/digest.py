"""The day's e-mail: one per unit, contact and day, over every intake of that day.

Each intake notes what it answered under ``HOME/outbox/days/<day>/<submission_id>.json`` (the
Oslo day of receipt; counts of findings and the contacts, never a fødselsnummer), and the
e-mails of a day are built only once the day is over: by the first intake or ``npr send`` after
it (:func:`close_days`). A second intake on the same day so adds its files to the same e-mail
instead of sending another. A day is marked closed after its e-mails are stored (``pending``,
:mod:`.mail`), and its notes are then removed (the e-mails' states list their submissions); a
run killed before the mark builds the same e-mails again (same ids), so none is lost or sent
twice. A file answered again after its day was closed is noted on the current day.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import datetime
from pathlib import Path

from npr_pipeline.atomic import write_text
from npr_pipeline.feedback.mail import Answered, queue_mails
from npr_pipeline.feedback.outbox import outbox
from npr_pipeline.feedback.reports import OSLO
from npr_pipeline.home import Home
from npr_pipeline.settings import Settings
from npr_pipeline.store.ledger import read_records

CLOSED = "closed"  # a day folder's marker: its e-mails are stored


def _days(home: Home) -> Path:
    return outbox(home) / "days"


def oslo_day(moment: datetime) -> str:
    """The Norwegian day of a moment (aware)."""
    return moment.astimezone(OSLO).date().isoformat()


def note_answers(home: Home, answered: Iterable[Answered], now: datetime) -> None:
    """Note each answered file on its day (today's when its own day is already closed)."""
    for item in answered:
        day = item.day
        if (_days(home) / day / CLOSED).exists():
            day = oslo_day(now)
        entry = {
            "submission_id": item.record.submission_id,
            "unit_name": item.unit_name,
            "contacts": list(item.contacts),
            "errors": item.errors,
            "warnings": item.warnings,
        }
        path = _days(home) / day / f"{item.record.submission_id}.json"
        write_text(path, json.dumps(entry, ensure_ascii=False), durable=False)


def close_days(home: Home, settings: Settings, now: datetime) -> list[str]:
    """Build the e-mails of every day before ``now``'s Oslo day not yet closed; their ids."""
    root, today = _days(home), oslo_day(now)
    due = sorted(
        f
        for f in (root.iterdir() if root.is_dir() else ())
        if f.name < today and not (f / CLOSED).exists()
    )
    if not due:
        return []
    noted = {
        folder: [json.loads(p.read_text(encoding="utf-8")) for p in sorted(folder.glob("*.json"))]
        for folder in due
    }
    wanted = {e["submission_id"] for entries in noted.values() for e in entries}
    records = {r.submission_id: r for r in read_records(home, wanted)}  # keyed, not the year
    ids: list[str] = []
    for folder, entries in noted.items():
        items = [
            Answered(records[e["submission_id"]], e["unit_name"], tuple(e["contacts"]),
                     e["errors"], e["warnings"], on=folder.name)
            for e in entries if e["submission_id"] in records
        ]  # fmt: skip
        mails = queue_mails(home, settings, items)
        write_text(folder / CLOSED, "\n".join([now.isoformat(), *mails]) + "\n")
        for path in folder.glob("*.json"):  # the e-mails' states list their submissions
            path.unlink()
        ids += mails
    return ids
