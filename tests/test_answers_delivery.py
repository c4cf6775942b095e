"""Answers reach the units: MsgHead messages in the outbox, e-mails through a real SMTP server.

A real local SMTP server (aiosmtpd) receives what intake sends; the messages it got are read
back and checked. Everything written and sent in a run over files holding fødselsnumre is
scanned for them (CONTRACT.md, "Personal data in answers").
"""

from __future__ import annotations

import email
import json
import re
import socket
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email.policy import default
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller
from lxml import etree
from typer.testing import CliRunner

from npr_pipeline.cli import app
from npr_pipeline.feedback.deliver import deliver_answers
from npr_pipeline.feedback.mail import Answered, queue_mails
from npr_pipeline.feedback.outbox import outbox, unposted
from npr_pipeline.feedback.reports import XSD_PATH
from npr_pipeline.feedback.states import read_state
from npr_pipeline.home import Home
from npr_pipeline.intake.reasons import Status
from npr_pipeline.intake.run import intake_directory
from npr_pipeline.schemas import MSGHEAD_NS
from npr_pipeline.settings import Settings, load_settings, save_settings
from npr_pipeline.store.ledger import LedgerRecord, load_records, read_records, write_records
from tests.intake_files import (
    fill_inbox,
    make_year,
    mutate,
    prepare_test_home,
    run_intake,
    to_validation_service,
)
from tests.intake_files import reversed_dates as with_finding
from tests.outbox_states import outbox_states
from tests.test_intake_daily import DAILY, T1, T2, Files, _home, kontakt

MH = {"mh": MSGHEAD_NS}
_FID = re.compile(rb'fid="(\d{11})"')


class _Inbox:
    """An aiosmtpd handler that keeps every message it is given."""

    def __init__(self) -> None:
        self.messages: list[tuple[list[str], bytes]] = []

    async def handle_DATA(self, server, session, envelope) -> str:  # noqa: N802 - aiosmtpd's name
        self.messages.append((list(envelope.rcpt_tos), envelope.content))
        return "250 OK"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def smtp() -> Iterator[tuple[_Inbox, int]]:
    handler, port = _Inbox(), _free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield handler, port
    finally:
        controller.stop()


def _mail_home(root: Path, port: int) -> Home:
    home = prepare_test_home(Home(root=root))
    save_settings(home, Settings(smtp_host="127.0.0.1", smtp_port=port, smtp_retry_seconds=0))
    return home


def _without_contact(path: Path) -> bytes:
    text = path.read_text(encoding="utf-8")
    contact = re.search(r"<Kontaktperson [^>]*/>\n", text)
    assert contact is not None
    return mutate(path, (contact.group(0), ""))


def _bad_fnr(data: bytes) -> bytes:
    """The first fødselsnummer with its last digit changed: invalid, so shown in XPR_ERR."""
    found = _FID.search(data)
    assert found is not None
    number = found.group(1)
    wrong = number[:-1] + str((int(number[-1:]) + 1) % 10).encode()
    return data.replace(b'fid="' + number + b'"', b'fid="' + wrong + b'"', 1)


def _files(folder: Path) -> list[str]:
    """The files under ``folder`` (not the folders: a rewrite of a state file may make the
    empty scratch folder of its temporary name)."""
    return sorted(p.name for p in folder.rglob("*") if p.is_file())


def test_outbox_messages_are_valid_msghead_to_the_senders_her(
    small_year: Path, tmp_path: Path, shared_reference: Path
) -> None:
    wrapper = tmp_path / "both.xsd"
    wrapper.write_text(
        '<xs:schema xmlns:xs="http://www.w3.org/2001/XMLSchema">'
        f'<xs:import namespace="{MSGHEAD_NS}" schemaLocation='
        f'"{shared_reference / "kith-msghead" / "MsgHead-v1_2.xsd"}"/>'
        f'<xs:import namespace="http://npr-pipeline.example/xmlstds/xpr_feedback/1" '
        f'schemaLocation="{XSD_PATH}"/></xs:schema>',
        encoding="utf-8",
    )
    schema = etree.XMLSchema(etree.parse(str(wrapper)))
    inbox = fill_inbox(tmp_path / "inbox", sorted((small_year / "inbox").glob("*_2026-01_*")))
    home = Home(root=tmp_path / "home")
    run_intake(home, inbox)
    records = {r.submission_id: r for r in load_records(home)}
    states = outbox_states(home)
    assert {(s["submission_id"], s["kind"]) for s in states} == {
        (sid, kind) for sid in records for kind in ("XPR_VAL", "XPR_ERR")
    }
    for state in states:
        assert state["state"] == "pending"
        tree = etree.parse(str(home.root / state["file"]))
        assert schema.validate(tree), schema.error_log
        her = tree.findtext("mh:MsgInfo/mh:Receiver/mh:Organisation/mh:Ident/mh:Id", namespaces=MH)
        assert her == records[state["submission_id"]].her
        assert tree.find("mh:MsgInfo/mh:Type", MH).get("V") == state["kind"]
    before = _files(outbox(home))
    deliver_answers(home, load_settings(home), records)  # a rerun posts nothing again
    assert _files(outbox(home)) == before
    assert outbox_states(home) == states


def test_one_mail_per_unit_and_day_with_the_display_files_and_no_fnr(
    smtp: tuple[_Inbox, int], tmp_path: Path
) -> None:
    server, port = smtp
    units = list(make_year(tmp_path / "year", units=3, through=2, episodes=20.0).values())
    busy = max(units, key=lambda u: u.file("ord", 2).stat().st_size)
    quiet = next(u for u in units if u is not busy)
    inbox = fill_inbox(
        tmp_path / "inbox",
        [u.file(msg, month) for u in units for msg in ("ord", "ide") for month in (1, 2)
         if not (u is busy and msg == "ord") and not (u is quiet and (msg, month) == ("ord", 2))],
        **{
            "busy_ord_1.xml": with_finding(busy.file("ord", 1).read_bytes()),
            "busy_ord_2.xml": with_finding(busy.file("ord", 2).read_bytes()),
            "quiet_no_contact.xml": _without_contact(quiet.file("ord", 2)),
            "busy_ide_test.xml": _bad_fnr(to_validation_service(busy.file("ide", 2))),
        },
    )  # fmt: skip
    home = _mail_home(tmp_path / "home", port)
    summary = run_intake(home, inbox)
    assert server.messages == []  # the day is not over: its e-mail waits
    deliver_answers(home, load_settings(home), [], now=datetime.now(UTC) + timedelta(days=1))
    by_file = {s.file: s for s in summary.submissions}
    no_contact = by_file["quiet_no_contact.xml"]
    assert no_contact.status == Status.ACCEPTED, no_contact.reasons  # a warning only
    assert "no_technical_contact" in {r.code for r in no_contact.reasons}
    assert by_file["busy_ord_1.xml"].status == Status.ACCEPTED

    assert len(server.messages) == 1, [m[0] for m in server.messages]  # only busy has findings
    ((recipients, raw),) = server.messages
    assert recipients == [f"npr-kontakt-{busy.resh}@example.no"]
    mail = email.message_from_bytes(raw, policy=default)
    names = sorted(part.get_filename() for part in mail.iter_attachments())
    with_findings = ("busy_ord_1.xml", "busy_ord_2.xml", "busy_ide_test.xml")
    sids = {by_file[f].submission_id for f in with_findings}
    kinds = ("XPR_VAL.html", "XPR_VAL.csv", "XPR_ERR.html", "XPR_ERR.csv")
    assert names == sorted(f"{sid}_{kind}" for sid in sids for kind in kinds)
    assert all(sid in mail.get_body(("plain",)).get_content() for sid in sids)

    fnrs = {
        m.group(1).decode() for path in inbox.iterdir() for m in _FID.finditer(path.read_bytes())
    }
    assert len(fnrs) > 10
    written = [p.read_bytes() for base in (home.feedback, outbox(home)) for p in base.rglob("*")
               if p.is_file()]  # fmt: skip
    sent = [part.get_content() for _, data in server.messages
            for part in email.message_from_bytes(data, policy=default).walk()
            if not part.is_multipart()]  # fmt: skip
    texts = [b.decode("utf-8", "replace") for b in written] + [
        s if isinstance(s, str) else s.decode("utf-8-sig") for s in sent
    ]
    leaks = [fnr for fnr in fnrs for text in texts if fnr in text]
    assert leaks == []
    assert any("fodselsnummer_valid" in text and "*****" in text for text in texts)


def test_a_failed_send_keeps_the_mails_and_npr_send_delivers_them(
    smtp: tuple[_Inbox, int], small_year: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Server down: the first e-mail fails every attempt, the second waits untried; both are
    kept, and ``npr send`` delivers them once the server is up, never twice."""
    server, port = smtp
    ords = sorted((small_year / "inbox").glob("*_2026-01_ord.xml"))[:2]
    inbox = fill_inbox(
        tmp_path / "inbox",
        **{f"finding{n}.xml": with_finding(p.read_bytes()) for n, p in enumerate(ords)},
    )
    home = _mail_home(tmp_path / "home", _free_port())  # nobody listens there
    run_intake(home, inbox)
    deliver_answers(home, load_settings(home), [], now=datetime.now(UTC) + timedelta(days=1))
    states = outbox_states(home, "email")
    assert [(s["state"], len(s["attempts"])) for s in states] == [("failed", 3), ("pending", 0)]
    assert all(a["error"] for a in states[0]["attempts"])
    assert all((home.root / s["file"]).is_file() for s in states) and server.messages == []

    save_settings(home, Settings(smtp_host="127.0.0.1", smtp_port=port, smtp_retry_seconds=0))
    monkeypatch.setenv("NPR_HOME", str(home.root))
    result = CliRunner().invoke(app, ["send", "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["sent"] == 2
    assert len(server.messages) == 2
    for state in states:
        state = read_state(home, state["id"])
        assert state["state"] == "sent" and state["attempts"][-1]["error"] is None
    assert CliRunner().invoke(app, ["send", "--json"]).exit_code == 0
    assert len(server.messages) == 2, "a sent e-mail is never sent again"


def test_answers_committed_by_a_killed_intake_are_posted_by_the_next(
    small_year: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Killed after its commits, before posting: the rerun sees duplicates, yet posts them."""
    import npr_pipeline.intake.run as intake_run

    def killed(*args: object, **kwargs: object) -> None:
        raise KeyboardInterrupt("killed before the answers were posted")

    inbox = fill_inbox(tmp_path / "inbox", sorted((small_year / "inbox").glob("*_2026-02_*")))
    home = prepare_test_home(Home(root=tmp_path / "home"))
    monkeypatch.setattr(intake_run, "deliver_answers", killed)
    with pytest.raises(KeyboardInterrupt):
        intake_run.intake_directory(home, inbox, workers=1)
    assert outbox_states(home) == []
    monkeypatch.undo()
    rerun = intake_run.intake_directory(home, inbox, workers=1)
    assert {s.status for s in rerun.submissions} == {Status.DUPLICATE}
    posted = {s["submission_id"] for s in outbox_states(home)}
    assert posted == {r.submission_id for r in load_records(home)}


def test_answers_are_posted_a_chunk_at_a_time_and_a_kill_between_chunks_is_caught_up(
    small_year: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Records read a chunk at a time (one record here): killed after the first chunk, the
    rerun posts the rest, each message addressed to its unit by the registry's name."""
    from npr_pipeline.feedback import deliver
    from npr_pipeline.registry import current_registry

    inbox = fill_inbox(tmp_path / "inbox", sorted((small_year / "inbox").glob("*_2026-02_*")))
    home = prepare_test_home(Home(root=tmp_path / "home"))
    monkeypatch.setattr(deliver, "CHUNK", 1)
    real_read, reads = deliver.read_records, []

    def killed_after_one_chunk(home: Home, ids: list[str]) -> list[LedgerRecord]:
        reads.append(ids)
        if len(reads) > 1:
            raise KeyboardInterrupt("killed between chunks")
        return real_read(home, ids)

    monkeypatch.setattr(deliver, "read_records", killed_after_one_chunk)
    with pytest.raises(KeyboardInterrupt):
        intake_directory(home, inbox, workers=1)
    records = {r.submission_id: r for r in load_records(home)}
    assert len(records) > 1 and reads[0] == [min(records)]
    assert unposted(home, set(records)) == set(records) - {min(records)}

    monkeypatch.setattr(deliver, "read_records", real_read)
    intake_directory(home, inbox, workers=1)
    assert unposted(home, set(records)) == set()
    states = outbox_states(home)
    assert {s["submission_id"] for s in states} == set(records)
    registry = current_registry(home)
    names = dict(zip(registry["reshID"], registry["name"], strict=True))
    for state in states:
        tree = etree.parse(str(home.root / state["file"]))
        name = tree.findtext("mh:MsgInfo/mh:Receiver/mh:Organisation/mh:OrganisationName", None, MH)
        assert name == names[records[state["submission_id"]].unit]


def test_mails_group_by_unit_and_day_and_skip_clean_days(tmp_path: Path) -> None:
    """The daily route's rule over any answered files: one e-mail per unit, contact and Oslo
    day, listing only the files with findings; a clean day or a unit without contact: none."""
    home = prepare_test_home(Home(root=tmp_path / "home"))

    def answered(sid: str, unit: str, received: str, errors: int, contact: bool = True):
        record = LedgerRecord(sid, sid * 4, f"{sid}.xml", 1, received, "accepted", unit=unit)
        contacts = (f"{unit}@example.no",) if contact else ()
        return Answered(record, f"Unit {unit}", contacts, errors=errors, warnings=0)

    items = [
        answered("a" * 16, "1", "2026-03-01T08:00:00+00:00", 2),
        answered("b" * 16, "1", "2026-03-01T22:30:00+00:00", 0),  # clean: not listed
        answered("c" * 16, "1", "2026-03-01T23:30:00+00:00", 1),  # 00:30 on 2 March in Oslo
        answered("d" * 16, "2", "2026-03-01T09:00:00+00:00", 0),  # a clean day: no e-mail
        answered("e" * 16, "3", "2026-03-01T09:00:00+00:00", 5, contact=False),
    ]
    settings = Settings(smtp_host="127.0.0.1")
    ids = queue_mails(home, settings, items)
    states = [read_state(home, mail_id) for mail_id in ids]
    assert [(s["unit"], s["day"], s["to"], s["submissions"]) for s in states] == [
        ("1", "2026-03-01", ["1@example.no"], ["a" * 16]),
        ("1", "2026-03-02", ["1@example.no"], ["c" * 16]),
    ]
    assert all(s["state"] == "pending" for s in states)
    assert queue_mails(home, settings, items) == ids  # the same answers: the same e-mails
    assert len(list((outbox(home) / "mail").glob("*.eml"))) == 2


def test_two_intakes_on_one_day_send_one_mail_when_the_day_is_over(
    smtp: tuple[_Inbox, int], small_year: Path, tmp_path: Path
) -> None:
    """The morning's and the evening's intake of a unit's files: one e-mail listing the files
    with findings of both, sent by the first intake of the next day, never again."""
    server, port = smtp
    ords = sorted((small_year / "inbox").glob("*_2026-0[12]_ord.xml"))
    unit = ords[0].name.split("_")[0]
    jan, feb = (p for p in ords if p.name.startswith(unit))
    home = _mail_home(tmp_path / "home", port)
    day = datetime(2026, 3, 2, 7, 0, tzinfo=UTC)

    def intake(name: str, files: dict[str, bytes], at: datetime) -> None:
        inbox = fill_inbox(tmp_path / name, **files)
        intake_directory(home, inbox, workers=1, clock=lambda: at)

    intake("morning", {"jan.xml": with_finding(jan.read_bytes())}, day)
    intake("evening", {"feb.xml": with_finding(feb.read_bytes())}, day + timedelta(hours=12))
    assert server.messages == []
    intake("next", {}, day + timedelta(days=1))
    assert len(server.messages) == 1
    mail = email.message_from_bytes(server.messages[0][1], policy=default)
    body = mail.get_body(("plain",)).get_content()
    sids = {r.file: r.submission_id for r in load_records(home)}
    assert sids["jan.xml"] in body and sids["feb.xml"] in body
    assert "2 fil(er) med funn" in mail["Subject"]
    (day_folder,) = (outbox(home) / "days").iterdir()
    assert [p.name for p in day_folder.iterdir()] == ["closed"]  # the notes are gone
    intake("later", {}, day + timedelta(days=2))
    CliRunner().invoke(app, ["send"], env={"NPR_HOME": str(home.root)})
    assert len(server.messages) == 1, "a day's e-mail is sent once"


def test_the_daily_mail_renders_the_display_files_of_the_files_with_findings(
    smtp: tuple[_Inbox, int], tmp_path: Path
) -> None:
    """Daily intake writes the XML answers only; the day's e-mail carries the HTML and CSV of
    the files with findings, rendered when it is built, and no other file gets any."""
    server, port = smtp
    home = _home(tmp_path, {DAILY.resh})
    save_settings(home, Settings(smtp_host="127.0.0.1", smtp_port=port, smtp_retry_seconds=0))
    new = Files(tmp_path / "files")
    clean = new("kontakt", kontakt("K-1", "N", T1))
    unknown = new("kontakt", kontakt("K-9", "M", T2))  # no such record: a finding
    run_intake(home, fill_inbox(tmp_path / "inbox", [clean, unknown]))
    assert [p for p in home.feedback.rglob("*") if p.suffix in {".html", ".csv"}] == []
    deliver_answers(home, load_settings(home), [], now=datetime.now(UTC) + timedelta(days=1))
    ((recipients, raw),) = server.messages
    assert recipients == [f"npr-kontakt-{DAILY.resh}@example.no"]
    sids = {r.file: r.submission_id for r in load_records(home)}
    mail = email.message_from_bytes(raw, policy=default)
    attached = {part.get_filename(): part.get_content() for part in mail.iter_attachments()}
    kinds = ("XPR_VAL.html", "XPR_VAL.csv", "XPR_ERR.html", "XPR_ERR.csv")
    assert sorted(attached) == sorted(f"{sids[unknown.name]}_{kind}" for kind in kinds)
    assert "unknown_key" in attached[f"{sids[unknown.name]}_XPR_ERR.html"]
    assert not list((home.feedback / sids[clean.name]).glob("*.html"))


def test_a_first_outbox_counts_the_older_records_as_posted_by_keyed_reads(tmp_path: Path) -> None:
    """Without ``posted.txt`` what the ledger received over a week before counts as posted
    (found by one query on ``received``, not by reading every record), the rest is posted; the
    records are then read by their keys."""
    home = prepare_test_home(Home(root=tmp_path / "home"))
    now = datetime.now(UTC).replace(microsecond=0)
    old, new, other = (
        LedgerRecord(sid * 16, sid * 64, f"{sid}.xml", 1, at.isoformat(), "accepted")
        for sid, at in (("a", now - timedelta(days=30)), ("b", now), ("c", now))
    )
    write_records(home, [old, new, other])
    assert unposted(home, {old.submission_id, new.submission_id}) == {new.submission_id}
    posted = (outbox(home) / "posted.txt").read_text(encoding="ascii").split()
    assert posted == [old.submission_id]
    keyed = read_records(home, [other.submission_id, new.submission_id, "f" * 16])
    assert [r.file for r in keyed] == ["b.xml", "c.xml"]
