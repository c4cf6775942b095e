"""A reader for every message type described as data (``npr_pipeline/messages/``), no per-type code.

One streaming pass with ``iterparse`` over a MsgHead-wrapped file: the payload's namespace names
the message type and version (its folder's ``schema.xsd`` and ``mapping.yaml``); every record
element (the child of ``Institusjon`` the mapping names, e.g. ``Kontakt``) is validated, in
batches, inside a copy of its ``Melding`` and ``Institusjon`` start tags and the message's
``Kontaktperson`` elements, so the whole message is checked against the full schema while memory
is bounded by a batch, not the file. Values become Arrow columns by the XML Schema lexical rules
(:mod:`npr_pipeline.intake.lexical`). A file with any error gives its reasons and no rows;
the refusals and schema errors are :mod:`npr_pipeline.intake.validation`'s, the monthly
reader's too, so the same fault gets the same answer whichever reader meets it.

``npr intake`` reads every daily and report file with it (:mod:`npr_pipeline.intake.daily`).
Rows come from the plan compiled from the mapping (:mod:`npr_pipeline.intake.extract`). The
monthly ord and ide are read by the native validating pass instead
(:mod:`npr_pipeline.intake.reader`, :mod:`npr_pipeline.intake.native`), which collects the same
columns from the same mappings in C.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from copy import deepcopy
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa
from lxml import etree

from npr_pipeline.intake.extract import Extractor, Row
from npr_pipeline.intake.lexical import (
    LexicalError,
    xs_date,
    xs_datetime,
    xs_decimal,
    xs_integer,
)
from npr_pipeline.intake.reasons import Reason, reason
from npr_pipeline.intake.safe_xml import classify_syntax_error, hardened_iterparse
from npr_pipeline.intake.validation import contact_warning, precheck, technical_contact, validate
from npr_pipeline.messages import MessageType, TableSpec, by_namespace
from npr_pipeline.schemas import MSGHEAD_NS

MH = f"{{{MSGHEAD_NS}}}"
BATCH = 256
MAX_ERRORS = 1000
MAX_CONTACTS = 100  # Kontaktperson elements kept for the validation shell

CONVERTERS: dict[str, Callable[[str], object]] = {
    "string": str,
    "int": xs_integer,
    "date": xs_date,
    "timestamp": xs_datetime,
    "decimal": xs_decimal,
}


@dataclass
class TypedResult:
    """What one pass learned: the message type, its Melding attributes, tables or reasons."""

    message: MessageType | None = None
    header_type: str | None = None
    attrs: dict[str, str] = field(default_factory=dict)
    records: int = 0
    tables: dict[str, pa.Table] = field(default_factory=dict)
    errors: list[Reason] = field(default_factory=list)
    warnings: list[Reason] = field(default_factory=list)  # never a rejection
    contacts: list[str] = field(default_factory=list)  # the technical contacts' e-mail

    @property
    def ok(self) -> bool:
        return not self.errors


def read_typed(
    path: Path, context: Mapping[str, str] | None = None, batch: int = BATCH
) -> TypedResult:
    """Read one file of any message type in ``npr_pipeline/messages/``.

    ``context`` columns (e.g. ``submission_id``, ``unit``: what intake knows from the envelope and
    the registry) come first in every table, as strings. Each table then has the mapping's
    inherited and own columns and ``line``, the record's line in the file. On any error the
    result has ``errors`` and no tables.
    """
    path = Path(path)
    result = TypedResult()
    problem = precheck(path)
    if problem is not None:
        result.errors.append(problem)
        return result
    _Pass(path, dict(context or {}), batch, result).run()
    if result.errors:
        result.tables = {}
    return result


class _Pass:
    """The state of one streaming pass."""

    def __init__(self, path: Path, context: dict[str, str], batch: int, result: TypedResult):
        self.path, self.context, self.batch_size, self.result = path, context, batch, result
        self.mtype: MessageType | None = None
        self.ns = ""
        self.melding: etree._Element | None = None
        self.institusjon: etree._Element | None = None
        self.contacts: list[etree._Element] = []
        self.batch: list[etree._Element] = []
        self.checked = 0
        self.rows: dict[str, list[Row]] = {}
        self.extractor: Extractor | None = None

    # -- the pass ---------------------------------------------------------------------------

    def run(self) -> None:
        started = False
        etree.clear_error_log()  # a syntax error's log must not carry an earlier file's entries
        try:  # our own handle: a pass that stops early must not leave the file open
            with open(self.path, "rb") as source:
                for event, elem in hardened_iterparse(source, ("start", "end")):
                    started = True
                    if event == "start":
                        self._start(elem)
                    else:
                        self._end(elem)
                    if self._stopped:
                        return
        except etree.XMLSyntaxError as exc:
            self.result.errors.append(classify_syntax_error(exc, self.path, started))
            return
        if self.melding is None:
            self._error(reason("header_incomplete", "No payload (Content/Melding) found."))
        elif self.mtype is not None and self.mtype.has_contacts and not self.result.contacts:
            self.result.warnings.append(contact_warning())
        self._finish()

    @property
    def _stopped(self) -> bool:
        """Stop at the first structural failure, or when the error list is full."""
        errors = self.result.errors
        return len(errors) >= MAX_ERRORS or any(e.code != "schema_error" for e in errors)

    def _start(self, elem: etree._Element) -> None:
        parent = elem.getparent()
        if parent is not None and parent is self.melding and self.institusjon is None:
            if elem.tag == f"{{{self.ns}}}Institusjon":
                self.institusjon = elem
            return
        if etree.QName(elem).localname != "Melding":
            return
        if parent is None or parent.tag != f"{MH}Content":
            return
        if self.melding is not None:
            self._schema_error(elem, "Exactly one Melding per file.")
            return
        self.melding = elem
        self.ns = etree.QName(elem).namespace or ""
        self.mtype = by_namespace(self.ns)
        if self.mtype is None:
            self._error(reason("unknown_payload", f"Namespace: {self.ns or '(none)'}."))
            return
        header = self.result.header_type
        if header is not None and header != self.mtype.message_type:
            detail = f"MsgInfo/Type {header}, payload {self.mtype.message_type}."
            self._error(reason("payload_mismatch", detail))
            return
        self.result.message = self.mtype
        self.result.attrs = dict(elem.attrib)
        self.rows = {spec.name: [] for spec in self.mtype.tables}
        adders = {spec.name: self._adder(spec) for spec in self.mtype.tables}
        self.extractor = Extractor(self.mtype, adders, CONVERTERS)

    def _end(self, elem: etree._Element) -> None:
        parent = elem.getparent()
        if elem.tag == f"{MH}Type" and parent is not None and parent.tag == f"{MH}MsgInfo":
            self.result.header_type = elem.get("V")
            return
        if parent is None:
            return
        if parent.tag == f"{MH}Content" and elem is not self.melding:
            self._schema_error(elem, f"Unexpected element {etree.QName(elem).localname}.")
        elif self.mtype is None:
            return
        elif parent is self.melding:
            self._melding_child(elem)
        elif parent is self.institusjon:
            self._record(elem)
            parent.remove(elem)
        elif elem is self.melding:
            if self.institusjon is None:
                self._schema_error(elem, "Melding needs its Institusjon.")
            if (elem.text or "").strip():
                self._schema_error(elem, "Text is not allowed in Melding.")

    def _melding_child(self, elem: etree._Element) -> None:
        assert self.melding is not None
        local = etree.QName(elem).localname if etree.QName(elem).namespace == self.ns else None
        if local == "Kontaktperson" and self.institusjon is None:
            if len(self.contacts) >= MAX_CONTACTS:
                self._schema_error(elem, f"More than {MAX_CONTACTS} Kontaktperson elements.")
            self.contacts.append(deepcopy(elem))
            address = technical_contact(elem)
            if address is not None:
                self.result.contacts.append(address)
        elif elem is self.institusjon:
            if (elem.text or "").strip():
                self._schema_error(elem, "Text is not allowed in Institusjon.")
            self._flush()
            if self.checked == 0:
                self._validate([], elem.sourceline)  # the schema decides whether none is fine
        else:
            name = etree.QName(elem).localname
            self._schema_error(elem, f"Unexpected element {name} (or out of order).")
        self.melding.remove(elem)

    def _record(self, elem: etree._Element) -> None:
        assert self.mtype is not None
        if elem.tag != f"{{{self.ns}}}{self.mtype.record}":
            self._schema_error(elem, f"Unexpected element {etree.QName(elem).localname}.")
            return
        self.result.records += 1
        self.batch.append(deepcopy(elem))
        if len(self.batch) >= self.batch_size:
            self._flush()

    def _finish(self) -> None:
        if self.mtype is not None and not self.result.errors:
            self._flush()
            self.result.tables = self.tables()

    # -- validation ---------------------------------------------------------------------------

    def _flush(self) -> None:
        records, self.batch = self.batch, []
        if records:
            self._validate(records, records[0].sourceline)

    def _shell(self, records: list[etree._Element], line: int | None) -> etree._Element:
        """Melding and Institusjon start tags, the contacts and these records: a whole message."""
        assert self.melding is not None
        melding = etree.Element(self.melding.tag, dict(self.melding.attrib), nsmap={None: self.ns})
        melding.sourceline = self.melding.sourceline
        melding.extend(deepcopy(c) for c in self.contacts)
        source = self.institusjon if self.institusjon is not None else self.melding
        institusjon = etree.SubElement(
            melding,
            f"{{{self.ns}}}Institusjon",
            dict(self.institusjon.attrib) if self.institusjon is not None else {},
        )
        institusjon.sourceline = source.sourceline or line
        institusjon.extend(records)
        return melding

    def _validate(self, records: list[etree._Element], line: int | None) -> None:
        assert self.mtype is not None
        xsd = self.mtype.schema()
        shell = self._shell(records, line)
        self.checked += 1
        findings = validate(shell, xsd, line)
        if not findings:
            if not self.result.errors:
                for record in records:
                    self._extract(record)
            return
        room = MAX_ERRORS - len(self.result.errors)
        self.result.errors.extend(findings[: max(room, 0)])

    # -- extraction ---------------------------------------------------------------------------

    def _adder(self, spec: TableSpec) -> Callable[[Row], None]:
        """Where the extractor puts a table's rows; for a ``unique`` key, a check first (the
        schema's xs:unique sees one batch, not the file)."""
        append = self.rows[spec.name].append
        if not spec.unique:
            return append
        names = [name for name, _ in spec.all_columns()]
        positions = [names.index(name) for name in spec.key]
        local = spec.element[-1]
        seen: set[tuple[object, ...]] = set()

        def add(row: Row) -> None:
            key = tuple(row[i] for i in positions)
            if key in seen:
                named = ", ".join(f"{n}={v}" for n, v in zip(spec.key, key, strict=True))
                line = row[-1] if spec.line else None
                message = f"Duplicate {local} ({named})."
                self._error(reason("schema_error", message, line=line, element=local))
            seen.add(key)
            append(row)

        return add

    def _extract(self, elem: etree._Element) -> None:
        try:
            self.extractor.extract(elem)  # type: ignore[union-attr]
        except LexicalError as exc:
            self._error(reason("value_out_of_range", str(exc), line=elem.sourceline))

    def tables(self) -> dict[str, pa.Table]:
        """The rows as Arrow tables: the context columns, then the mapping's (and ``line``)."""
        assert self.mtype is not None
        context = tuple(self.context)
        found = {}
        for spec in self.mtype.tables:
            schema = spec.arrow_schema(context)
            rows = self.rows[spec.name]
            columns = list(zip(*rows, strict=True)) if rows else [()] * (len(schema) - len(context))
            arrays = [pa.array([self.context[name]] * len(rows), pa.string()) for name in context]
            arrays += [
                pa.array(values, field.type)
                for values, field in zip(columns, list(schema)[len(context) :], strict=True)
            ]
            found[spec.name] = pa.Table.from_arrays(arrays, schema=schema)
        return found

    # -- errors -------------------------------------------------------------------------------

    def _schema_error(self, elem: etree._Element, message: str) -> None:
        local = etree.QName(elem).localname
        self._error(reason("schema_error", message, line=elem.sourceline, element=local))

    def _error(self, found: Reason) -> None:
        self.result.errors.append(found)
