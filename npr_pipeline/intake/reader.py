"""One streaming pass over a monthly submission: header, gate, schema validation, extraction.

The message type is data (``npr_pipeline/messages/<kind>/<version>/``, ``route: monthly``: ord
and ide): its ``schema.xsd`` validates and its ``mapping.yaml`` names the records (the children
of ``Institusjon``) and the tables their rows go to; nothing here knows ord from ide. The file
is read once by libxml2's SAX2 parser (:mod:`npr_pipeline.intake.native`) without a tree: the
elements before the payload come here to build the header and run the gate, which chooses the
type; the ``Melding`` is then validated by libxml2's streaming XSD validator while the columns
its mapping names are collected. Identity constraints (``xs:unique`` on pasientNr, pid, Enhet
reshID) are the schema's, over the whole file. A schema error is reported with its element's
line and name (and the nearest record id); a file that is not well-formed gets its syntax
reason alone (schema errors on an incomplete document are not the unit's answer). What a file's
refusal before parsing looks like is :mod:`npr_pipeline.intake.validation`'s, shared with the
typed reader.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import pyarrow as pa
from lxml import etree

from npr_pipeline.feedback.schema_messages import mask_fodselsnummer
from npr_pipeline.intake.envelope_tree import EnvelopeTree
from npr_pipeline.intake.gate import GateResult, Header, RegistryIndex, check_header, check_melding
from npr_pipeline.intake.key_digest import record_keys
from npr_pipeline.intake.lexical import LexicalError, xs_date_attr, xs_integer
from npr_pipeline.intake.native import Schema, arrays, plan, read, schema
from npr_pipeline.intake.reasons import Reason, reason
from npr_pipeline.intake.safe_xml import native_syntax_error
from npr_pipeline.intake.tables import ValueRejected, key_columns, part_table
from npr_pipeline.intake.validation import contact_warning, precheck, technical_contact
from npr_pipeline.messages import MessageType, by_namespace
from npr_pipeline.schemas import MSGHEAD_NS
from npr_pipeline.store.lake import write_part

MH = f"{{{MSGHEAD_NS}}}"
MAX_ERRORS = 1000
LOPENR_MAX = 999_999_999  # the schema's bound (NPR.xsd, type lopenr)


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
    rows: dict[str, int] = field(default_factory=dict)  # of each staged table, as written
    contacts: list[str] = field(default_factory=list)
    # of an ord's or ide's patient keys as written (:mod:`npr_pipeline.intake.key_digest`)
    record_keys: bytes | None = None

    @property
    def errors(self) -> list[Reason]:
        return [r for r in self.reasons if r.severity == "error"]

    def date_attr(self, name: str) -> date | None:
        """A date attribute of Melding by its XSD lexical rules, or None if absent or invalid."""
        return xs_date_attr(self.attrs, name)

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
    held: dict[str, pa.Table] | None = None,
    prechecked: bool = False,
) -> ReadResult:
    """Read one archived file; staged Parquet files are kept only if it is acceptable.

    With ``held``, a production file's tables are put there (converted, not written) instead
    of staged: the caller writes a chunk of small files' rows as one part per table, whose
    fixed cost is the write of a small file's part (``npr_pipeline.intake.run``). A test
    file's tables are staged all the same (its answer reads them). ``rows`` counts them
    either way, and ``record_keys`` digests an ord's or ide's patient keys either way.
    ``prechecked``: the caller has shown that :func:`~npr_pipeline.intake.validation.precheck`
    passes (its size in range, and :func:`~npr_pipeline.intake.daily.untyped_by_probe`, which
    checks the encoding and proves the prolog), so the file is not opened for it again."""
    result = ReadResult()
    problem = None if prechecked else precheck(path, max_bytes)
    if problem:
        result.reasons.append(problem)
        return result
    try:
        _Pass(path, index, staging, submission_id, received, result, held).run()
    except _Stop:
        pass
    except ValueRejected as exc:
        result.reasons.append(reason("value_out_of_range", str(exc)))
    if result.errors or result.gate.rejected:
        shutil.rmtree(staging, ignore_errors=True)
        result.staged, result.rows, result.record_keys = {}, {}, None
        if held is not None:
            held.clear()
    return result


class _Pass:
    """The state of one pass: the handler of :func:`npr_pipeline.intake.native.read` for the
    elements outside the payload and the payload's own children, then the rows."""

    def __init__(
        self,
        path: Path,
        index: RegistryIndex,
        staging: Path,
        submission_id: str,
        received: date,
        result: ReadResult,
        held: dict[str, pa.Table] | None = None,
    ) -> None:
        self.path, self.index, self.staging, self.held = path, index, staging, held
        self.submission_id, self.received, self.result = submission_id, received, result
        self.envelope = EnvelopeTree()  # the envelope only: a few dozen elements
        self.mtype: MessageType | None = None
        self.melding = False
        self.content_seen = False
        self.closed = False  # the Melding ended

    def run(self) -> None:
        found = read(str(self.path), self, MAX_ERRORS)
        if found["doctype"]:
            self._error(reason("doctype_forbidden"))
            return
        if not found["well_formed"]:
            self._error(native_syntax_error(found["parse_errors"], self.path))
            return
        complete = self.result.header is not None and self.content_seen
        if complete:
            for problem in self.envelope.errors():  # the header's come first in the file
                self._error(problem)
        for message, line, element in found["schema_errors"]:
            # never a fødselsnummer in an answer
            self._error(reason("schema_error", mask_fodselsnummer(message), line=line,
                               element=element))  # fmt: skip
        if self.closed and not self.result.contacts:
            self.result.reasons.append(contact_warning())
        if not complete:
            self._error(reason("header_incomplete", "MsgInfo or Document/RefDoc/Content missing."))
        if self.mtype is not None and not self.result.errors:
            self._write(self.mtype, found["columns"], found["records"])

    # -- the handler ----------------------------------------------------------------------
    def start(self, tag: str, attrs: dict[str, str], line: int) -> tuple[Schema, tuple] | None:
        """An element outside the payload; the plan for the first ``Melding`` (its namespace
        judged by the gate before the envelope's builder, which refuses namespace names that
        are not URIs, sees it)."""
        found = None
        if not self.melding and etree.QName(tag).localname == "Melding":
            self.melding = True
            found = self._melding(tag, attrs)
        refused = self.envelope.start(tag, attrs, line)
        if refused is not None:
            self._error(refused)
            raise _Stop
        return found

    def data(self, text: str) -> None:
        self.envelope.data(text)

    def end(self, tag: str) -> None:
        elem = self.envelope.end(tag)
        if tag == f"{MH}MsgInfo":
            self._header(elem)
        elif tag == f"{MH}Content":
            if not self.melding:
                self._error(reason("unknown_payload", "Content holds no Melding."))
            self.content_seen = True
        elif self.mtype is not None and tag == f"{{{self.mtype.namespace}}}Melding":
            self.closed = True

    def child(self, local: str, attrs: dict[str, str], line: int) -> None:
        """A child of the payload's ``Melding``: the technical contacts, the institution."""
        if local == "Kontaktperson":
            address = technical_contact(attrs)
            if address:
                self.result.contacts.append(address)
        elif local == "Institusjon":
            orgnr = attrs.get("institusjonID")
            unit = self.result.gate.unit
            if unit is not None and orgnr != unit["orgnr"]:
                mismatch = f"institusjonID {orgnr} but the sender's is {unit['orgnr']}."
                self._error(reason("institution_mismatch", mismatch, line=line))
                raise _Stop

    # -- what the handler decides ---------------------------------------------------------
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

    def _melding(self, tag: str, attrs: dict[str, str]) -> tuple[Schema, tuple]:
        """The gate on the payload's namespace and attributes; the type's schema and plan."""
        header = self.result.header
        if header is None:
            self._error(reason("header_incomplete", "The payload comes before MsgInfo."))
            raise _Stop
        self.result.attrs = attrs
        payload = by_namespace(etree.QName(tag).namespace or "")
        gate = self.result.gate
        check_melding(gate, header.msg_type or "", payload, attrs, self.received)
        if gate.rejected:
            raise _Stop
        assert payload is not None  # check_melding rejects a payload no folder names
        self.result.version, self.result.msg = payload.version, payload.kind
        self.mtype = payload
        return schema(payload), plan(payload)

    def _write(self, mtype: MessageType, columns: list, records: int) -> None:
        """The rows of a valid file: one Parquet file per table staged, or held for the
        caller's chunk (see :func:`read_submission`)."""
        unit = self.result.gate.unit["reshID"] if self.result.gate.unit else "test"
        raws = [arrays(raw) for raw in columns]
        longest = max((len(raw[0]) for raw in raws), default=0)
        keys = key_columns((self.submission_id, unit, self.result.year or 0), longest)
        hold = self.held is not None and self.result.gate.test_route is None
        if not hold:
            self.staging.mkdir(parents=True, exist_ok=True)
        for spec, raw in zip(mtype.tables, raws, strict=True):
            frame = part_table(spec.name, keys, raw)
            digest = record_keys(mtype.message_type, spec.name, frame)
            if digest is not None:
                self.result.record_keys = digest
            if hold:
                self.held[spec.name] = frame  # type: ignore[index]
                rows = frame.num_rows
            else:
                path = self.staging / f"{spec.name}.parquet"
                rows = write_part(path, frame)
                self.result.staged[spec.name] = path
            self.result.rows[spec.name] = rows
            if spec.name == mtype.counted:
                self.result.episodes = rows
        self.result.patients = records

    def _error(self, found: Reason) -> None:
        if len(self.result.reasons) < MAX_ERRORS:
            self.result.reasons.append(found)


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
