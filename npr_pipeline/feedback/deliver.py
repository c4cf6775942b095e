"""After intake has written its answers: post them to the outbox and e-mail the contacts.

Intake calls :func:`deliver_answers` once per run, with the submissions whose answers it wrote
(the files it committed and the deliveries it checked again). The technical contacts are read
from each archived file's ``Kontaktperson typeKontaktperson="1"`` (the file as received is the
source; nothing about the contact is stored anywhere else).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path

from lxml import etree

from npr_pipeline.feedback.address import valid_address
from npr_pipeline.feedback.digest import close_days, note_answers
from npr_pipeline.feedback.mail import Answered, send_pending
from npr_pipeline.feedback.outbox import (
    mark_posted,
    mark_posted_through,
    post_answers,
    posted_through,
    unposted,
)
from npr_pipeline.feedback.reports import read_report_summary
from npr_pipeline.feedback.states import prepare as prepare_states
from npr_pipeline.home import Home
from npr_pipeline.intake.archive import archive_path
from npr_pipeline.intake.safe_xml import hardened_iterparse
from npr_pipeline.registry import unit_names
from npr_pipeline.settings import Settings
from npr_pipeline.store.ledger import LedgerRecord, read_records, record_count
from npr_pipeline.store.ledger import submission_ids as ledger_ids
from npr_pipeline.store.state import held_writes

# Records read, posted and noted at a time: this run's records whole were ~2 KB each in Python
# (~70 MiB at the end of a national day of 37,000 files), held beside the answers' writes.
CHUNK = 2_000


def deliver_answers(
    home: Home,
    settings: Settings,
    submission_ids: Iterable[str],
    now: datetime | None = None,
    committed: int | None = None,
) -> None:
    """Outbox messages for every answer; with SMTP configured, the answers noted on their day,
    the e-mails of the days over by ``now`` (default: now) built, and whatever e-mail is still
    pending sent, this run's or an earlier one's.

    Also every committed submission not yet posted: an intake killed after its commits and
    before this step leaves them, and its rerun sees those files as duplicates. ``committed``
    (how many records this run added to the ledger, all of them in ``submission_ids``) makes
    that search keyed: if the ledger holds just those beyond what was posted through, none is
    left (records are never removed); else the ledger's ids are read against ``posted.txt``.

    The records are read :data:`CHUNK` at a time, each chunk marked posted once its answers
    are out: a run killed between chunks leaves the rest unposted, found by the next run.
    """
    wanted = set(submission_ids)
    records_now = record_count(home)
    if committed is None or posted_through(home) != records_now - committed:
        wanted |= unposted(home, ledger_ids(home) - wanted)
    moment = now or datetime.now(UTC)
    ordered = sorted(wanted)
    names = unit_names(home) if ordered else {}
    for start in range(0, len(ordered), CHUNK):
        with held_writes():  # the chunk's reads and its states' write share one opening
            prepare_states(home)
            chunk = read_records(home, ordered[start : start + CHUNK])
            _post(home, settings, chunk, names, moment)
    mark_posted_through(home, records_now)
    close_days(home, settings, moment)
    send_pending(home, settings)


def _post(
    home: Home,
    settings: Settings,
    records: list[LedgerRecord],
    names: dict[str, str],
    moment: datetime,
) -> None:
    """Post one chunk's answers, note them on their day (with SMTP), then mark them posted: a
    run killed before the mark posts and notes them again, to the same files."""
    post_answers(home, records, names)
    answered = []
    if settings.smtp_host:
        answered = [_answered(home, r, names.get(r.unit or "")) for r in records]
    note_answers(home, answered, moment)
    mark_posted(home, [r.submission_id for r in records])


def _answered(home: Home, record: LedgerRecord, name: str | None) -> Answered:
    summary = read_report_summary(home.feedback / record.submission_id).values()
    return Answered(
        record,
        name,
        technical_contacts(archive_path(home.archive, record.checksum)),
        errors=sum(s["errors"] for s in summary),
        warnings=sum(s["warnings"] for s in summary),
    )


def technical_contacts(path: Path) -> tuple[str, ...]:
    """The valid e-mail addresses of the type-1 contacts, read up to the first Institusjon."""
    found: list[str] = []
    tags = ("{*}Kontaktperson", "{*}Institusjon")
    with open(path, "rb") as handle:  # closed also when the loop stops at Institusjon
        try:
            for _, elem in hardened_iterparse(handle, ("start",), tags):
                if etree.QName(elem).localname == "Institusjon":
                    break
                address = elem.get("epost")
                if elem.get("typeKontaktperson") == "1" and valid_address(address):
                    found.append(address)
        except etree.XMLSyntaxError:
            pass  # a broken file: the contacts read before the break still count
    return tuple(dict.fromkeys(found))
