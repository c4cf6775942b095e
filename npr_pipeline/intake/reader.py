"""One streaming pass over a submission: header, gate, schema validation and extraction.

The file is read with ``iterparse`` restricted to the elements that matter; each ``Objektholder``
(one patient) is schema-validated on its own as soon as it is complete, its rows are extracted,
and it is cleared, so memory is bounded by the largest patient, not the file. Elements the
schema does not allow anywhere are caught by checking what is left beside each processed one;
the schema's uniqueness rules (pasientNr, pid, Enhet reshID) are enforced with sets.
"""

from __future__ import annotations

import shutil
from copy import deepcopy
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import BinaryIO

from lxml import etree

from npr_pipeline.feedback.address import valid_address
from npr_pipeline.feedback.schema_messages import mask_fodselsnummer
from npr_pipeline.intake.gate import GateResult, Header, RegistryIndex, check_header, check_melding
from npr_pipeline.intake.lexical import LexicalError, xs_date, xs_integer
from npr_pipeline.intake.reasons import Reason, reason
from npr_pipeline.intake.safe_xml import (
    check_encoding,
    check_prolog,
    classify_syntax_error,
    hardened_iterparse,
)
from npr_pipeline.intake.tables import Sink, ValueRejected
from npr_pipeline.schemas import MSGHEAD_NS, parse_namespace, schema
from npr_pipeline.store.lake import IDE_TABLES, ORD_TABLES

MH = f"{{{MSGHEAD_NS}}}"
MAX_ERRORS = 1000
LOPENR_MAX = 999_999_999  # the schema's bound (NPR.xsd, type lopenr)
BATCH = 256
TAGS = (
    f"{MH}MsgInfo",
    f"{MH}Content",
    "{*}Melding",
    "{*}Kontaktperson",
    "{*}Institusjon",
    "{*}Enhet",
    "{*}Objektholder",
    "{*}PasientIdent",
)


@dataclass
class ReadResult:
    """Everything one pass learned about a file."""

    header: Header | None = None
    gate: GateResult = field(default_factory=GateResult)
    version: str | None = None
    msg: str | None = None
    attrs: dict[str, str] = field(default_factory=dict)
    reasons: list[Reason] = field(default_factory=list)
    patients: int = 0
    episodes: int = 0
    staged: dict[str, Path] = field(default_factory=dict)
    contacts: list[str] = field(default_factory=list)

    @property
    def errors(self) -> list[Reason]:
        return [r for r in self.reasons if r.severity == "error"]

    def date_attr(self, name: str) -> date | None:
        """A date attribute of Melding by its XSD lexical rules, or None if absent or invalid."""
        try:
            return xs_date(self.attrs[name])
        except (KeyError, LexicalError):
            return None

    @property
    def year(self) -> int | None:
        start = self.date_attr("fraDatoPeriode")
        return start.year if start else None

    @property
    def lopenr(self) -> int | None:
        """The message's serial number (the schema bounds it to nine digits)."""
        try:
            return xs_integer(self.attrs["lopenr"], maximum=LOPENR_MAX)
        except (KeyError, LexicalError):
            return None


class _Stop(Exception):
    """The gate refused the file: stop reading it."""


def read_submission(
    path: Path,
    index: RegistryIndex,
    staging: Path,
    submission_id: str,
    received: date,
    max_bytes: int,
) -> ReadResult:
    """Read one archived file; staged Parquet files are kept only if it is acceptable."""
    result = ReadResult()
    size = path.stat().st_size
    if size == 0:
        result.reasons.append(reason("empty_file"))
        return result
    if size > max_bytes:
        result.reasons.append(reason("too_large", f"{size:,} bytes > {max_bytes:,}."))
        return result
    with open(path, "rb") as fh:
        head = fh.read(512)
    problem = check_encoding(head) or check_prolog(path)
    if problem:
        result.reasons.append(problem)
        return result
    pass_ = _Pass(path, index, staging, submission_id, received, result)
    try:
        pass_.run()
    except _Stop:
        pass
    except etree.XMLSyntaxError as exc:
        result.reasons.append(classify_syntax_error(exc, path, started=True))
    except ValueRejected as exc:
        result.reasons.append(reason("value_out_of_range", str(exc)))
    finally:
        pass_.close_sinks()
    if result.errors or result.gate.rejected:
        shutil.rmtree(staging, ignore_errors=True)
        result.staged = {}
    return result


class _Pass:
    """The state of one streaming pass."""

    def __init__(
        self,
        path: Path,
        index: RegistryIndex,
        staging: Path,
        submission_id: str,
        received: date,
        result: ReadResult,
    ) -> None:
        self.path, self.index, self.staging = path, index, staging
        self.submission_id, self.received, self.result = submission_id, received, result
        self.xsd: etree.XMLSchema | None = None
        self.sinks: dict[str, Sink] = {}
        self.melding: etree._Element | None = None
        self.institutions = 0
        self.seen_patients: set[str] = set()
        self.seen_departments: set[str] = set()
        self.shell_checked = False
        self.objektholder_seen = False
        self.contacts: list[etree._Element] = []
        self.pending: list[etree._Element] = []
        self.kept_department: etree._Element | None = None

    # -- events ---------------------------------------------------------------------------
    def run(self) -> None:
        with open(self.path, "rb") as handle:  # closed however the parse ends (_Stop)
            self._run(handle)

    def _run(self, handle: BinaryIO) -> None:
        content_seen = False
        for event, elem in hardened_iterparse(handle, ("start", "end"), TAGS):
            tag = elem.tag
            if tag == f"{MH}MsgInfo":
                if event == "end":
                    self._header(elem)
            elif tag == f"{MH}Content":
                if event == "end" and self.melding is None:
                    self._error(reason("unknown_payload", "Content holds no Melding."))
                content_seen = True
            elif self.melding is None:
                if event == "start" and etree.QName(tag).localname == "Melding":
                    self._melding(elem)
            elif event == "end":
                self._end(elem)
            elif tag.endswith("}Institusjon"):
                self._institution(elem)
        if self.result.header is None or not content_seen:
            self._error(reason("header_incomplete", "MsgInfo or Document/RefDoc/Content missing."))

    def _header(self, info: etree._Element) -> None:
        type_el = info.find(f"{MH}Type")
        msg_type = type_el.get("V") if type_el is not None else None
        header = Header(
            msg_type=msg_type,
            sender=_idents(info.find(f"{MH}Sender")),
            receiver=_idents(info.find(f"{MH}Receiver")),
            sender_name=info.findtext(f"{MH}Sender/{MH}Organisation/{MH}OrganisationName"),
        )
        self.result.header = header
        if not header.sender or not header.receiver:
            self._error(reason("header_incomplete", "Sender or Receiver is missing."))
            raise _Stop
        self.result.gate = check_header(header, self.index)
        if self.result.gate.rejected:
            raise _Stop

    def _melding(self, melding: etree._Element) -> None:
        header = self.result.header
        if header is None:
            self._error(reason("header_incomplete", "The payload comes before MsgInfo."))
            raise _Stop
        self.melding = melding
        attrs = {k: v for k, v in melding.attrib.items()}
        self.result.attrs = attrs
        payload = parse_namespace(etree.QName(melding).namespace or "")
        gate = self.result.gate
        check_melding(gate, header.msg_type or "", payload, attrs, self.received)
        if gate.rejected:
            raise _Stop
        self.result.version, self.result.msg = payload
        self.xsd = schema(*payload)
        unit = gate.unit["reshID"] if gate.unit else "test"
        keys = (self.submission_id, unit, self.result.year or 0)
        tables = ORD_TABLES if self.result.msg == "ord" else IDE_TABLES
        self.sinks = {t: Sink(t, self.staging / f"{t}.parquet", keys) for t in tables}

    def _institution(self, inst: etree._Element) -> None:
        self.institutions += 1
        orgnr = inst.get("institusjonID")
        gate = self.result.gate
        if gate.unit is not None and orgnr != gate.unit["orgnr"]:
            self._error(
                reason(
                    "institution_mismatch",
                    f"institusjonID {orgnr} but the sender's is {gate.unit['orgnr']}.",
                    line=inst.sourceline,
                )
            )
            raise _Stop

    def _end(self, elem: etree._Element) -> None:
        local = etree.QName(elem).localname
        if local in ("Kontaktperson", "Enhet", "Institusjon"):
            self._unexpected_siblings(elem)
        if local == "Kontaktperson":
            if self.institutions:
                self._schema_error(elem, "Kontaktperson must precede Institusjon.")
            self._validate(elem)
            self.contacts.append(elem)
            if elem.get("typeKontaktperson") == "1" and valid_address(elem.get("epost")):
                self.result.contacts.append(elem.get("epost", ""))
        elif local == "Enhet":
            self._department(elem)
        elif local == "Objektholder":
            self._patient(elem)
        elif local == "PasientIdent":
            self._ident(elem)
        elif local == "Institusjon":
            self._close_institution(elem)
        elif local == "Melding":
            self._close_melding(elem)

    # -- content ------------------------------------------------------------------------
    def _department(self, enhet: etree._Element) -> None:
        if self.result.msg != "ord" or self.objektholder_seen:
            self._schema_error(enhet, "Enhet is not allowed here.")
            return
        if not self.shell_checked:
            self._check_shell(enhet)
        self._validate(enhet)
        resh = enhet.get("reshID", "")
        if resh in self.seen_departments:
            self._schema_error(enhet, f"Duplicate Enhet reshID {resh}.")
        self.seen_departments.add(resh)
        g = enhet.get
        self._row(
            "departments",
            resh,
            g("navn"),
            g("sektor"),
            g("isfRefusjon"),
            g("nace"),
            g("enhetstype"),
            g("avdeling"),
        )
        if self.kept_department is None:
            self.kept_department = enhet  # keeps each validated Institusjon chunk schema-valid
        else:
            _release(enhet)

    def _patient(self, holder: etree._Element) -> None:
        self.objektholder_seen = True
        if self.result.msg != "ord":
            self._schema_error(holder, "Objektholder is not allowed in an ide message.")
            return
        if not self.shell_checked:
            self._schema_error(holder, "Institusjon needs at least one Enhet first.")
            self.shell_checked = True
        pnr = holder.get("pasientNr", "")
        if pnr in self.seen_patients:
            self._schema_error(holder, f"Duplicate pasientNr {pnr}.")
        self.seen_patients.add(pnr)
        self._queue(holder)

    def _ident(self, ident: etree._Element) -> None:
        if self.result.msg != "ide":
            self._schema_error(ident, "PasientIdent is not allowed in an ord message.")
            return
        if not self.shell_checked:
            self._check_shell(None)
        pid = ident.get("pid", "")
        if pid in self.seen_patients:
            self._schema_error(ident, f"Duplicate pid {pid}.")
        self.seen_patients.add(pid)
        self._queue(ident)

    def _queue(self, elem: etree._Element) -> None:
        """Patients are validated and extracted in chunks of BATCH, with their Institusjon."""
        self.pending.append(elem)
        if len(self.pending) >= BATCH:
            self._flush_pending(self._chunk(elem.getparent()))

    def _chunk(self, institution: etree._Element) -> etree._Element:
        """A detached Institusjon holding the queued (complete) patients.

        The parser builds the tree ahead of its events, so the live Institusjon may already hold
        half-read patients; moving the finished ones into a shell (with a copy of the first
        Enhet, which the schema requires) validates exactly them, in one schema call.
        """
        shell = etree.Element(institution.tag, dict(institution.attrib))
        if self.kept_department is not None:
            shell.append(deepcopy(self.kept_department))
        shell.extend(self.pending)
        return shell

    def _flush_pending(self, institution: etree._Element) -> None:
        """Validate the chunk, then extract and free the queued patients."""
        ok = self._validate(institution)
        if ok and not self.result.errors:
            for elem in self.pending:
                self._extract(elem)
            for sink in self.sinks.values():
                if sink.full():
                    sink.flush()
        if institution.getparent() is not None:  # the live tree (last chunk): free in place
            for elem in self.pending:
                _release(elem)
        self.pending.clear()  # a detached chunk is freed as a whole when it goes

    def _extract(self, elem: etree._Element) -> None:
        self.result.patients += 1
        if self.result.msg == "ord":
            self.result.episodes += _extract_patient(elem, elem.get("pasientNr", ""), self.sinks)
        else:
            g = elem.get
            self._row("idents", g("pid"), g("fid"), g("fidType"), elem.sourceline)

    def _close_institution(self, inst: etree._Element) -> None:
        if not self.shell_checked:
            self._check_shell(None)
        kept = 1 if self.kept_department is not None else 0
        if self.pending or len(inst) > kept:
            self._flush_pending(inst)

    def _close_melding(self, melding: etree._Element) -> None:
        if not self.result.contacts:
            self.result.reasons.append(reason("no_technical_contact", severity="warning"))
        if self.institutions != 1:
            found = self.institutions
            self._schema_error(melding, f"Exactly one Institusjon needed, found {found}.")
        for child in melding:
            local = etree.QName(child).localname if isinstance(child.tag, str) else None
            if local not in ("Kontaktperson", "Institusjon"):
                self._schema_error(child, f"Unexpected element {local}.")

    def _check_shell(self, first_department: etree._Element | None) -> None:
        """Validate Melding and Institusjon attributes (and order) with a copied skeleton."""
        self.shell_checked = True
        melding = self.melding
        assert melding is not None
        shell = etree.Element(melding.tag, dict(melding.attrib), nsmap=melding.nsmap)
        for contact in self.contacts:
            etree.SubElement(shell, contact.tag, dict(contact.attrib))
        institution = next((c for c in melding if etree.QName(c).localname == "Institusjon"), None)
        if institution is None:
            self._schema_error(melding, "Institusjon must follow Kontaktperson.")
            return
        inst_copy = etree.SubElement(shell, institution.tag, dict(institution.attrib))
        if first_department is not None:
            etree.SubElement(inst_copy, first_department.tag, dict(first_department.attrib))
        self._validate(shell, line=melding.sourceline)

    def _unexpected_siblings(self, elem: etree._Element) -> None:
        """Anything left before a processed element is something the schema does not allow."""
        previous = elem.getprevious()
        while previous is not None:
            local = etree.QName(previous).localname if isinstance(previous.tag, str) else None
            if (
                local not in ("Kontaktperson", "Institusjon")
                and previous is not self.kept_department
            ):
                self._schema_error(previous, f"Unexpected element {local}.")
                parent = previous.getparent()
                nxt = previous.getprevious()
                parent.remove(previous)
                previous = nxt
            else:
                previous = previous.getprevious()

    # -- helpers ------------------------------------------------------------------------
    def _validate(self, elem: etree._Element, line: int | None = None) -> bool:
        assert self.xsd is not None
        if self.xsd.validate(elem):
            return True
        for entry in self.xsd.error_log:
            self._error(
                reason(
                    "schema_error",
                    mask_fodselsnummer(entry.message),  # never a fødselsnummer in an answer
                    line=line or entry.line or elem.sourceline,
                    element=_element_name(elem, entry.path),
                )
            )
        return False

    def _schema_error(self, elem: etree._Element, message: str) -> None:
        local = etree.QName(elem).localname if isinstance(elem.tag, str) else "?"
        self._error(reason("schema_error", message, line=elem.sourceline, element=local))

    def _error(self, found: Reason) -> None:
        if len(self.result.reasons) < MAX_ERRORS:
            self.result.reasons.append(found)

    def _row(self, table: str, *values: object) -> None:
        if not self.result.errors:
            self.sinks[table].add_row(*values)

    def close_sinks(self) -> None:
        for name, sink in self.sinks.items():
            try:
                sink.close()
            except ValueRejected as exc:
                self._error(reason("value_out_of_range", str(exc)))
            if sink.writer is not None:
                self.result.staged[name] = sink.path


def _idents(party: etree._Element | None) -> dict[str, list[str]]:
    """HER / ENH / RSH idents of an organisation and the organisations nested in it."""
    found: dict[str, list[str]] = {}
    if party is None:
        return found
    for ident in party.iter(f"{MH}Ident"):
        kind = ident.find(f"{MH}TypeId")
        value = (ident.findtext(f"{MH}Id") or "").strip()
        if kind is not None and value:
            found.setdefault(kind.get("V", ""), []).append(value)
    return found


def _path_hint(path: str | None) -> str | None:
    """The last step of libxml2's node path, without namespace prefixes."""
    if not path:
        return None
    last = path.rsplit("/", 1)[-1]
    return last.split(":", 1)[-1]


_RECORD_IDS = ("episodeID", "henvisningsperiodeID", "pasientNr", "pid")
"""Attributes that name a record to its unit (never the fødselsnummer ``fid``)."""


def _element_name(validated: etree._Element, path: str | None) -> str | None:
    """The element a schema error is about, named so a unit can find it: its name and the
    nearest record id (``Episode episodeID=…``, ``Pasient (pasientNr=…)``); libxml2's path
    step (``*[3]``) where the element cannot be found again."""
    hint = _path_hint(path)
    if not path or not path.startswith("/"):
        return hint
    steps = path.split("/")[2:]  # the first step is the validated element itself
    try:
        found = validated.xpath("/".join(steps)) if steps else [validated]
    except etree.XPathError:
        return hint
    if len(found) != 1 or not isinstance(found[0], etree._Element):
        return hint
    node = found[0]
    local = etree.QName(node).localname
    for holder in (node, *node.iterancestors()):
        for attribute in _RECORD_IDS:
            value = holder.get(attribute)
            if value:
                return (
                    f"{local} {attribute}={value}"
                    if holder is node
                    else (f"{local} ({attribute}={value})")
                )
    return local


def _release(elem: etree._Element) -> None:
    """Free a processed element: only unprocessed (unexpected) elements stay in the tree."""
    parent = elem.getparent()
    elem.clear()
    if parent is not None:
        parent.remove(elem)


def _extract_patient(holder: etree._Element, pnr: str, sinks: dict[str, Sink]) -> int:
    """Rows of one validated Objektholder into the table sinks; returns its episode count.

    The hot path of intake: local names bound once, one tuple appended per row.
    """
    ns = holder.tag[: holder.tag.index("}") + 1]
    episode_tag, referral_tag, patient_tag = (
        f"{ns}Episode",
        f"{ns}Henvisningsperiode",
        f"{ns}Pasient",
    )
    condition_tag, procedure_tag = f"{ns}Tilstand", f"{ns}Prosedyre"
    add_episode = sinks["episodes"].add
    add_diagnosis = sinks["diagnoses"].add
    add_procedure = sinks["procedures"].add
    episodes = 0
    for child in holder:
        tag = child.tag
        g = child.get
        if tag == episode_tag:
            episode_id = g("episodeID")
            add_episode((
                pnr, episode_id, g("reshID"), g("fagomrade"), g("omsorgsniva"), g("innmateHast"),
                g("kontaktType"), g("debitor"), g("komNrHjem"), g("innDatoTid"), g("utDatoTid"),
                g("henvisningsperiodeID"), g("drg"), g("drgKilde"), child.sourceline,
            ))  # fmt: skip
            episodes += 1
            seq = 0
            for part in child:
                if part.tag == condition_tag:
                    code = part[0]
                    add_diagnosis((
                        pnr, episode_id, part.get("tilstNr"), code.get("kodeNr"),
                        code.get("kodeverk"),
                    ))  # fmt: skip
                else:
                    for prosedyre in part.iter(procedure_tag):
                        seq += 1
                        code = prosedyre[0]
                        add_procedure((
                            pnr, episode_id, seq, code.get("kodeNr"), code.get("kodeverk"),
                            prosedyre.get("dato"),
                        ))  # fmt: skip
        elif tag == referral_tag:
            referral_id = g("henvisningsperiodeID")
            sinks["referrals"].add((
                pnr, referral_id, g("reshID"), g("fagomrade"), g("mottattDato"),
                g("ansiennitetsdato"), g("vurderingsdato"), g("fristStartHelsehjelp"),
                g("tjenestestart"), g("avviklingsdato"), g("avviklingskode"), g("prioritet"),
                child.sourceline,
            ))  # fmt: skip
            for post in child:
                sinks["postponements"].add((
                    pnr, referral_id, post.get("utsettelseskode"), post.get("utsettelsesdato"),
                    post.get("utsettelseSluttdato"),
                ))  # fmt: skip
        elif tag == patient_tag:
            sinks["patients"].add(
                (pnr, g("kjonn"), g("fodselsar"), g("komNrHjem"), holder.sourceline)
            )
    return episodes
