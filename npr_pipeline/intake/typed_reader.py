"""A reader for every message type described as data (``npr_pipeline/messages/``), no per-type code.

One pass of the native validating reader (:mod:`npr_pipeline.intake.native`, the monthly
reader's too) over a MsgHead-wrapped file: the payload's namespace names the message type and
version (its folder's ``schema.xsd`` and ``mapping.yaml``); libxml2's streaming XSD validator
checks the whole ``Melding`` (identity constraints over the whole file) while the columns the
mapping names are collected in C, without a tree. The string columns then become the mapping's
types in bulk (Arrow's cast; a spelling it does not read, e.g. a zone or 24:00, value by value
by the XML Schema lexical rules of :mod:`npr_pipeline.intake.lexical`). A file with any error
gives its reasons and no rows; the refusals and schema errors are
:mod:`npr_pipeline.intake.validation`'s, so the same fault gets the same answer whichever
reader meets it.

``npr intake`` reads every daily and report file with it (:mod:`npr_pipeline.intake.daily`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
from lxml import etree

from npr_pipeline.feedback.schema_messages import mask_fodselsnummer
from npr_pipeline.intake.envelope_tree import EnvelopeTree
from npr_pipeline.intake.lexical import LexicalError, xs_date, xs_datetime, xs_decimal, xs_integer
from npr_pipeline.intake.native import Schema, arrays, plan, read, schema
from npr_pipeline.intake.reasons import Reason, reason
from npr_pipeline.intake.safe_xml import native_syntax_error
from npr_pipeline.intake.validation import contact_warning, precheck, technical_contact
from npr_pipeline.messages import COLUMN_TYPES, MessageType, by_namespace
from npr_pipeline.schemas import MSGHEAD_NS

MH = f"{{{MSGHEAD_NS}}}"
MAX_ERRORS = 1000
MAX_CONTACTS = 100  # Kontaktperson elements a file may name

READERS: dict[pa.DataType, Callable[[str], object]] = {
    COLUMN_TYPES["int"]: xs_integer,
    COLUMN_TYPES["date"]: xs_date,
    COLUMN_TYPES["timestamp"]: xs_datetime,
    COLUMN_TYPES["decimal"]: xs_decimal,
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


def read_typed(path: Path, context: Mapping[str, str] | None = None) -> TypedResult:
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
    _Pass(path, dict(context or {}), result).run()
    if result.errors:
        result.tables = {}
    return result


class _Stop(Exception):
    """A structural fault: the file's answer is known, stop reading it."""


class _Pass:
    """The handler of :func:`npr_pipeline.intake.native.read` for one file, then its tables."""

    def __init__(self, path: Path, context: dict[str, str], result: TypedResult) -> None:
        self.path, self.context, self.result = path, context, result
        self.open: list[tuple[str, int]] = []  # tag, line of the open elements outside the payload
        self.envelope = EnvelopeTree()
        self.mtype: MessageType | None = None
        self.melding = False

    def run(self) -> None:
        try:
            found = read(str(self.path), self, MAX_ERRORS)
        except _Stop:
            return
        self.result.records = found["records"]
        if found["doctype"]:
            self._error(reason("doctype_forbidden"))
            return
        if not found["well_formed"]:
            self._error(native_syntax_error(found["parse_errors"], self.path))
            return
        if self.melding:
            for problem in self.envelope.errors():  # the header's come first in the file
                self._error(problem)
        for message, line, element in found["schema_errors"]:
            # never a fødselsnummer in an answer
            self._error(reason("schema_error", mask_fodselsnummer(message), line=line,
                               element=element))  # fmt: skip
        if not self.melding:
            self._error(reason("header_incomplete", "No payload (Content/Melding) found."))
            return
        if self.mtype is None:
            return
        if self.mtype.has_contacts and not self.result.contacts:
            self.result.warnings.append(contact_warning())
        if not self.result.errors:
            self._tables(self.mtype, found["columns"])

    # -- the handler ----------------------------------------------------------------------
    def start(self, tag: str, attrs: dict[str, str], line: int) -> tuple[Schema, tuple] | None:
        """An element outside the payload; the schema and plan for the ``Melding``."""
        parent = self.open[-1][0] if self.open else None
        self.open.append((tag, line))
        if tag == f"{MH}Type" and parent == f"{MH}MsgInfo" and self.result.header_type is None:
            self.result.header_type = attrs.get("V")  # the first, as the gate reads it
        found = None
        if parent == f"{MH}Content" and etree.QName(tag).localname == "Melding":
            found = self._payload(tag, attrs, line)
        refused = self.envelope.start(tag, attrs, line)
        if refused is not None:
            self._error(refused)
            raise _Stop
        return found

    def _payload(self, tag: str, attrs: dict[str, str], line: int) -> tuple[Schema, tuple] | None:
        """The first ``Melding`` in Content: its type's schema and plan; a second is an error."""
        if self.melding:
            for message in ("Exactly one Melding per file.", "Unexpected element Melding."):
                self._error(reason("schema_error", message, line=line, element="Melding"))
            return None
        self.melding = True
        return self._melding(etree.QName(tag).namespace or "", attrs)

    def data(self, text: str) -> None:
        self.envelope.data(text)

    def end(self, tag: str) -> None:
        self.envelope.end(tag)
        _, line = self.open.pop()
        local = etree.QName(tag).localname
        if self.open and self.open[-1][0] == f"{MH}Content" and local != "Melding":
            message = f"Unexpected element {local}."
            self._error(reason("schema_error", message, line=line, element=local))

    def child(self, local: str, attrs: dict[str, str], line: int) -> None:
        """A child of the ``Melding``: a contact's address (the schema checks the rest)."""
        if local != "Kontaktperson":
            return
        if len(self.result.contacts) >= MAX_CONTACTS:
            message = f"More than {MAX_CONTACTS} Kontaktperson elements."
            self._error(reason("schema_error", message, line=line, element=local))
        address = technical_contact(attrs)
        if address is not None:
            self.result.contacts.append(address)

    def _melding(self, namespace: str, attrs: dict[str, str]) -> tuple[Schema, tuple]:
        """The type the namespace names, if MsgInfo/Type agrees: its schema and plan."""
        mtype = by_namespace(namespace)
        if mtype is None:
            self._error(reason("unknown_payload", f"Namespace: {namespace or '(none)'}."))
            raise _Stop
        header = self.result.header_type
        if header is not None and header != mtype.message_type:
            detail = f"MsgInfo/Type {header}, payload {mtype.message_type}."
            self._error(reason("payload_mismatch", detail))
            raise _Stop
        self.mtype = self.result.message = mtype
        self.result.attrs = attrs
        return schema(mtype), plan(mtype)

    # -- the rows -------------------------------------------------------------------------
    def _tables(self, mtype: MessageType, columns: list) -> None:
        """The collected columns as Arrow tables of the mapping's types, after the context
        columns; a value the register cannot store is a ``value_out_of_range`` at its row's
        line (once per row: an inherited value is told where its parent row has it)."""
        found: dict[str, pa.Table] = {}
        bad: list[tuple[int | None, str]] = []
        for spec, raw in zip(mtype.tables, columns, strict=True):
            schema_ = spec.arrow_schema(tuple(self.context))
            fields = list(schema_)[len(self.context) :]
            typed, problems = [], {}
            for number, (column, field_) in enumerate(zip(arrays(raw), fields, strict=True)):
                converted, wrong = _convert(column, field_.type)
                typed.append(converted)
                if number >= len(spec.inherit):
                    for row, problem in wrong:
                        problems.setdefault(row, problem)
            lines = typed[-1] if spec.line else None
            bad += [(lines[row].as_py() if lines else None, p) for row, p in problems.items()]
            rows = len(typed[0]) if typed else 0
            context = [pa.array([value] * rows, pa.string()) for value in self.context.values()]
            found[spec.name] = pa.Table.from_arrays([*context, *typed], schema=schema_)
        for line, problem in sorted(bad, key=lambda found: found[0] or 0):
            self._error(reason("value_out_of_range", problem, line=line))
        if not self.result.errors:
            self.result.tables = found

    def _error(self, found: Reason) -> None:
        if len(self.result.errors) < MAX_ERRORS:
            self.result.errors.append(found)


def _convert(column: pa.Array, dtype: pa.DataType) -> tuple[pa.Array, list[tuple[int, str]]]:
    """A column of XML strings as ``dtype`` and the rows whose value it cannot hold (with why).

    Arrow's cast reads the plain spellings in C++; a column holding any other schema-valid
    spelling (a sign, whitespace, a zone, 24:00:00) is read value by value by the lexical rules
    instead, so the same value gets the same value or the same reason as before."""
    if column.type == dtype:
        return column, []
    try:
        return pc.cast(column, dtype), []
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        pass
    convert = READERS[dtype]
    values: list[object] = []
    wrong: list[tuple[int, str]] = []
    for row, value in enumerate(column.to_pylist()):
        try:
            values.append(None if value is None else convert(value))
        except LexicalError as problem:
            values.append(None)
            wrong.append((row, str(problem)))
    return pa.array(values, dtype), wrong
