"""E-mail of the answers to the units' technical contacts, grouped by unit and day.

One e-mail per unit, technical contact and day (Oslo time of receipt) lists the files of that
day whose answers have findings (errors or warnings) and carries their display files (HTML and
CSV of XPR_VAL and XPR_ERR, rendered from the XML answers when the e-mail is built: a daily
file's intake writes none); a day whose files were all clean gets none, the EDI answers being
enough. This is the daily route's rule, applied to every file answered that day, whichever
intake answered it: :mod:`.digest` collects a day's answers and calls :func:`queue_mails` once
the day is over.

Every e-mail is built and written to ``HOME/outbox/mail/<id>.eml`` with its state (a row of
:mod:`.states`, ``pending``) before it is sent; sending is tried ``smtp_attempts`` times with
growing pauses, every attempt recorded; an e-mail that could not be sent stays ``failed`` with
its attempts, and the next ``npr intake`` or ``npr send`` sends it. The id comes from the unit,
day, contact and the answers' bytes, so a rerun neither builds nor sends the same e-mail twice.
"""

from __future__ import annotations

import hashlib
import smtplib
import time
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from email.message import EmailMessage
from email.policy import SMTP

from npr_pipeline.atomic import write_bytes
from npr_pipeline.feedback.outbox import outbox, scratch
from npr_pipeline.feedback.reports import OSLO, display_files, local_time
from npr_pipeline.feedback.schema_messages import mask_fodselsnummer
from npr_pipeline.feedback.states import prepare, read_states, unsent_mails, write_state
from npr_pipeline.home import Home
from npr_pipeline.settings import Settings
from npr_pipeline.store.ledger import LedgerRecord

SENT, PENDING, FAILED = "sent", "pending", "failed"
_TYPES = {"html": ("text", "html"), "csv": ("text", "csv")}


@dataclass(frozen=True)
class Answered:
    """A file the register answered, with whom to tell and what its answers found."""

    record: LedgerRecord
    unit_name: str | None
    contacts: tuple[str, ...]
    errors: int
    warnings: int
    on: str | None = None  # the day it is listed on, when not its day of receipt (digest)

    @property
    def day(self) -> str:
        """The Oslo day of receipt (a unit's day is a Norwegian day), or the day it was noted
        on after its own day had been closed."""
        if self.on:
            return self.on
        return datetime.fromisoformat(self.record.received).astimezone(OSLO).date().isoformat()

    @property
    def sender(self) -> str:
        """Who sent it: the unit, or the idents of a sender the registry does not know."""
        return self.record.unit or self.record.her or self.record.orgnr or "unknown"


def queue_mails(home: Home, settings: Settings, answered: Iterable[Answered]) -> list[str]:
    """Build and store the e-mail of every unit, contact and day with findings; their ids."""
    groups: dict[tuple[str, str, tuple[str, ...]], list[Answered]] = {}
    for item in answered:
        if item.contacts and (item.errors or item.warnings):
            key = (item.sender, item.day, item.contacts)
            groups.setdefault(key, []).append(item)
    mails = []
    for (_, day, contacts), items in sorted(groups.items()):
        items.sort(key=lambda a: (a.record.received, a.record.file))
        mails.append((_mail_id(home, day, contacts, items), day, contacts, items))
    if not mails:
        return []
    prepare(home)
    built = read_states(home, [m[0] for m in mails])
    for mail_id, day, contacts, items in mails:
        if mail_id in built:
            continue
        message = _message(home, settings, mail_id, day, contacts, items)
        path = outbox(home) / "mail" / f"{mail_id}.eml"
        write_bytes(path, message.as_bytes(policy=SMTP), scratch=scratch(home))
        write_state(home, mail_id, {
            "id": mail_id, "channel": "email", "state": PENDING, "to": list(contacts),
            "unit": items[0].sender, "day": day, "file": str(path.relative_to(home.root)),
            "submissions": [a.record.submission_id for a in items], "attempts": [],
        })  # fmt: skip
    return [m[0] for m in mails]


def send_pending(home: Home, settings: Settings, sleep=time.sleep) -> dict[str, int]:
    """Send every e-mail not sent yet; counts of sent, failed and left pending.

    After one e-mail has failed every attempt the server is taken to be down and the rest
    wait for the next run (``pending``, untried): a dead server must not hold intake (and its
    HOME lock) for attempts x timeout per e-mail.
    """
    counts = {SENT: 0, FAILED: 0, PENDING: 0}
    if not settings.smtp_host:
        return counts
    prepare(home)
    for state in unsent_mails(home):
        if counts[FAILED]:
            counts[PENDING] += 1
            continue
        data = (home.root / state["file"]).read_bytes()
        state["state"] = _send(settings, data, state, sleep)
        write_state(home, state["id"], state)
        counts[state["state"]] += 1
    return counts


def _send(settings: Settings, data: bytes, state: dict, sleep) -> str:
    """Up to ``smtp_attempts`` tries, each recorded in ``state``; the resulting state."""
    for attempt in range(settings.smtp_attempts):
        if attempt:
            sleep(settings.smtp_retry_seconds * 2 ** (attempt - 1))
        at = datetime.now(UTC).isoformat(timespec="seconds")
        try:
            with smtplib.SMTP(
                settings.smtp_host, settings.smtp_port, timeout=settings.smtp_timeout
            ) as smtp:
                smtp.sendmail(settings.smtp_sender, state["to"], data)
        except (OSError, smtplib.SMTPException) as exc:
            state["attempts"].append({"at": at, "error": f"{type(exc).__name__}: {exc}"})
            continue
        state["attempts"].append({"at": at, "error": None})
        return SENT
    return FAILED


def _mail_id(home: Home, day: str, contacts: tuple[str, ...], items: list[Answered]) -> str:
    digest = hashlib.sha256(f"{items[0].sender}|{day}|{','.join(contacts)}".encode())
    for item in items:
        for path in display_files(home.feedback / item.record.submission_id):
            digest.update(path.name.encode() + hashlib.sha256(path.read_bytes()).digest())
    return "mail-" + digest.hexdigest()[:24]


def _message(
    home: Home,
    settings: Settings,
    mail_id: str,
    day: str,
    contacts: tuple[str, ...],
    items: list[Answered],
) -> EmailMessage:
    name = items[0].unit_name or items[0].sender
    message = EmailMessage()
    message["Subject"] = f"NPR tilbakemelding {day}: {len(items)} fil(er) med funn, {name}"
    message["From"] = settings.smtp_sender
    message["To"] = ", ".join(contacts)
    message["Message-ID"] = f"<{mail_id}@{settings.smtp_sender.split('@')[-1]}>"
    lines = [
        f"Norsk pasientregister har kontrollert filene fra {name} mottatt {day}.",
        "Disse filene har funn (feil eller advarsler); rapportene er vedlagt (HTML og CSV):",
        "",
    ]
    for item in items:
        record = item.record
        lines.append(
            f"- {mask_fodselsnummer(record.file)} ({record.message_type or 'ukjent type'}, "
            f"mottatt {local_time(record.received)}): status {record.status}, "
            f"{item.errors} feil, {item.warnings} advarsler (id {record.submission_id})"
        )
    lines += ["", "Svarene (XPR_VAL, XPR_ERR) er også sendt som EDI-meldinger til HER-id-en."]
    message.set_content("\n".join(lines))
    for item in items:
        for path in display_files(home.feedback / item.record.submission_id):
            maintype, subtype = _TYPES[path.suffix[1:]]
            message.add_attachment(
                path.read_bytes(), maintype=maintype, subtype=subtype,
                filename=f"{item.record.submission_id}_{path.name}",
            )  # fmt: skip
    return message
