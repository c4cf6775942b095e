"""One streaming pass over a monthly submission: header, gate, schema validation, extraction.

The message type is data (``npr_pipeline/messages/<kind>/<version>/``, ``route: monthly``: ord
and ide): its ``schema.xsd`` validates and its ``mapping.yaml`` names the records (the children
of ``Institusjon``) and the tables their rows go to, extracted by the plan compiled from it
(:mod:`npr_pipeline.intake.extract`); nothing here knows ord from ide. The file is read with
``iterparse`` restricted to the elements that matter; the main records (``Objektholder``: one
patient; ``PasientIdent``) are schema-validated in chunks of ``BATCH`` as soon as they are
complete, their rows extracted and the elements cleared, so memory is bounded by a chunk, not
the file. Records listed before the main one (``Enhet``) are validated and extracted one by
one, and the first is kept so every chunk is a schema-valid ``Institusjon``. Elements the
schema does not allow anywhere are caught by checking what is left beside each processed one;
the uniqueness rules of the records' keys (``unique: true``: pasientNr, pid, Enhet reshID) are
enforced with sets across chunks. What a file's refusal and a schema error look like is
:mod:`npr_pipeline.intake.validation`'s, shared with the typed reader.
"""

from __future__ import annotations

import functools
import shutil
from copy import deepcopy
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import BinaryIO

from lxml import etree

from npr_pipeline.intake.extract import Extractor
from npr_pipeline.intake.gate import GateResult, Header, RegistryIndex, check_header, check_melding
from npr_pipeline.intake.lexical import LexicalError, xs_date, xs_integer
from npr_pipeline.intake.reasons import Reason, reason
from npr_pipeline.intake.safe_xml import classify_syntax_error, hardened_iterparse
from npr_pipeline.intake.tables import Sink, ValueRejected
from npr_pipeline.intake.validation import contact_warning, precheck, technical_contact, validate
from npr_pipeline.messages import MessageType, TableSpec, all_types, by_namespace, messages_root
from npr_pipeline.schemas import MSGHEAD_NS

MH = f"{{{MSGHEAD_NS}}}"
MAX_ERRORS = 1000
LOPENR_MAX = 999_999_999  # the schema's bound (NPR.xsd, type lopenr)
BATCH = 256
_FIXED_TAGS = (f"{MH}MsgInfo", f"{MH}Content", "{*}Melding", "{*}Kontaktperson", "{*}Institusjon")


def _listened() -> tuple[frozenset[str], tuple[str, ...]]:
    """The record elements of every monthly type folder and the tags the pass listens for:
    it listens for every type's records before it knows the file's type (a record of another
    type is caught as out of place). From the folders, so a new one needs no change here."""
    return _listened_under(messages_root())


@functools.cache
def _listened_under(root: Path) -> tuple[frozenset[str], tuple[str, ...]]:
    records = sorted({r for t in all_types() if t.route == "monthly" for r in t.records})
    return frozenset(records), (*_FIXED_TAGS, *(f"{{*}}{local}" for local in records))


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
    problem = precheck(path, max_bytes)
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
        self.mtype: MessageType | None = None
        self.head: frozenset[str] = frozenset()  # the records before the main one (Enhet)
        self.main = ""  # the main record's local name, once the type is known
        self.extractor: Extractor | None = None
        self.unique: dict[str, tuple[TableSpec, set[tuple[str | None, ...]]]] = {}
        self.sinks: dict[str, Sink] = {}
        self.melding: etree._Element | None = None
        self.institutions = 0
        self.shell_checked = False
        self.main_seen = False
        self.contacts: list[etree._Element] = []
        self.pending: list[etree._Element] = []
        self.kept_head: etree._Element | None = None
        self.records, self.tags = _listened()

    # -- events ---------------------------------------------------------------------------
    def run(self) -> None:
        with open(self.path, "rb") as handle:  # closed however the parse ends (_Stop)
            self._run(handle)

    def _run(self, handle: BinaryIO) -> None:
        content_seen = False
        for event, elem in hardened_iterparse(handle, ("start", "end"), self.tags):
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
        found = by_namespace(etree.QName(melding).namespace or "")
        payload = found if found is not None and found.route == "monthly" else None
        gate = self.result.gate
        check_melding(gate, header.msg_type or "", payload, attrs, self.received)
        if gate.rejected:
            raise _Stop
        assert payload is not None  # check_melding rejects a payload no folder names
        self.result.version, self.result.msg = payload.version, payload.kind
        self.mtype = mtype = payload
        self.xsd = mtype.schema()
        self.head, self.main = frozenset(mtype.records[:-1]), mtype.record
        unit = gate.unit["reshID"] if gate.unit else "test"
        keys = (self.submission_id, unit, self.result.year or 0)
        self.sinks = {
            spec.name: Sink(spec.name, self.staging / f"{spec.name}.parquet", keys)
            for spec in mtype.tables
        }
        self.extractor = Extractor(mtype, {name: sink.add for name, sink in self.sinks.items()})
        self.unique = {
            spec.element[0]: (spec, set())
            for spec in mtype.tables
            if spec.unique and spec.parent is None
        }

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
        if local == self.main:  # the most frequent event first: it is every patient's
            self._record(elem, local)
            return
        head = local in self.head
        if head or local in ("Kontaktperson", "Institusjon"):
            self._unexpected_siblings(elem)
        if local == "Kontaktperson":
            if self.institutions:
                self._schema_error(elem, "Kontaktperson must precede Institusjon.")
            self._validate(elem)
            self.contacts.append(elem)
            address = technical_contact(elem)
            if address is not None:
                self.result.contacts.append(address)
        elif head:
            self._head_record(elem, local)
        elif local in self.records:
            kind = self.mtype.kind  # type: ignore[union-attr]
            self._schema_error(elem, f"{local} is not allowed in an {kind} message.")
        elif local == "Institusjon":
            self._close_institution(elem)
        elif local == "Melding":
            self._close_melding(elem)

    # -- content ------------------------------------------------------------------------
    def _head_record(self, elem: etree._Element, local: str) -> None:
        """A record the schema puts before the main ones (``Enhet``): few, read one by one."""
        if self.main_seen:
            self._schema_error(elem, f"{local} is not allowed here.")
            return
        if not self.shell_checked:
            self._check_shell(elem)
        self._validate(elem)
        self._check_unique(elem, local)
        if not self.result.errors:
            self.extractor.extract(elem)  # type: ignore[union-attr]
        if self.kept_head is None:
            self.kept_head = elem  # keeps each validated Institusjon chunk schema-valid
        else:
            _release(elem)

    def _record(self, elem: etree._Element, local: str) -> None:
        """A main record (``Objektholder``, ``PasientIdent``): queued for its chunk."""
        self.main_seen = True
        if not self.shell_checked:
            head = self.mtype.records[:-1]  # type: ignore[union-attr]
            if head:
                self._schema_error(elem, f"Institusjon needs at least one {head[0]} first.")
                self.shell_checked = True
            else:
                self._check_shell(None)
        self._check_unique(elem, local)
        self._queue(elem)

    def _check_unique(self, elem: etree._Element, local: str) -> None:
        """The mapping's ``unique`` key of a record, across chunks (a schema's xs:unique sees
        only the chunk it validates)."""
        found = self.unique.get(local)
        if found is None:
            return
        spec, seen = found
        key = tuple(map(elem.get, spec.key))
        if key in seen:
            named = ", ".join(f"{n}={v}" for n, v in zip(spec.key, key, strict=True))
            self._schema_error(elem, f"Duplicate {local} {named}.")
        seen.add(key)

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
        if self.kept_head is not None:
            shell.append(deepcopy(self.kept_head))
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
        self.extractor.extract(elem)  # type: ignore[union-attr]

    def _close_institution(self, inst: etree._Element) -> None:
        if not self.shell_checked:
            self._check_shell(None)
        kept = 1 if self.kept_head is not None else 0
        if self.pending or len(inst) > kept:
            self._flush_pending(inst)

    def _close_melding(self, melding: etree._Element) -> None:
        if not self.result.contacts:
            self.result.reasons.append(contact_warning())
        if self.institutions != 1:
            found = self.institutions
            self._schema_error(melding, f"Exactly one Institusjon needed, found {found}.")
        for child in melding:
            local = etree.QName(child).localname if isinstance(child.tag, str) else None
            if local not in ("Kontaktperson", "Institusjon"):
                self._schema_error(child, f"Unexpected element {local}.")

    def _check_shell(self, first_head: etree._Element | None) -> None:
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
        if first_head is not None:
            etree.SubElement(inst_copy, first_head.tag, dict(first_head.attrib))
        self._validate(shell, line=melding.sourceline)

    def _unexpected_siblings(self, elem: etree._Element) -> None:
        """Anything left before a processed element is something the schema does not allow."""
        previous = elem.getprevious()
        while previous is not None:
            local = etree.QName(previous).localname if isinstance(previous.tag, str) else None
            if local not in ("Kontaktperson", "Institusjon") and previous is not self.kept_head:
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
        findings = validate(elem, self.xsd, line)
        for found in findings:
            self._error(found)
        return not findings

    def _schema_error(self, elem: etree._Element, message: str) -> None:
        local = etree.QName(elem).localname if isinstance(elem.tag, str) else "?"
        self._error(reason("schema_error", message, line=elem.sourceline, element=local))

    def _error(self, found: Reason) -> None:
        if len(self.result.reasons) < MAX_ERRORS:
            self.result.reasons.append(found)

    def close_sinks(self) -> None:
        for name, sink in self.sinks.items():
            try:
                sink.close()
            except ValueRejected as exc:
                self._error(reason("value_out_of_range", str(exc)))
            if sink.writer is not None:
                self.result.staged[name] = sink.path
        counted = self.mtype.counted if self.mtype is not None else None
        if counted is not None:
            self.result.episodes = self.sinks[counted].rows


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


def _release(elem: etree._Element) -> None:
    """Free a processed element: only unprocessed (unexpected) elements stay in the tree."""
    parent = elem.getparent()
    elem.clear()
    if parent is not None:
        parent.remove(elem)
