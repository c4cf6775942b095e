"""The daily route in a worker: gate and read one daily event file or report file (KPP, the
forløpsmelding, XPR_VTK, NPR-melding-TSB), by the message type folders alone
(``npr_pipeline/messages/``; no per-type code).

The MsgHead header is read first (a few hundred bytes): a type the folders describe goes this
way, every other file to the monthly reader unchanged. The gate is the monthly one (known
sender, receiver route; for an event type the registry's ``route``, for a report type its
``message_types``), the unit must be registered in the data year (the version's), and the file
is read and validated by :func:`~npr_pipeline.intake.typed_reader.read_typed`; a report file's
rows are also run through the report types' catalogue checks
(:mod:`npr_pipeline.quality.report_checks`). Its rows carry the intake context
(``submission_id``, ``unit``, ``year``, ``lopenr``); the main process judges them and
commits them per batch (:mod:`npr_pipeline.intake.run`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import pyarrow as pa
from lxml import etree

from npr_pipeline.feedback.reports import Finding
from npr_pipeline.intake import native
from npr_pipeline.intake.gate import (
    GateResult,
    Header,
    RegistryIndex,
    check_active,
    check_header,
    typed_types,
)
from npr_pipeline.intake.lexical import xs_integer
from npr_pipeline.intake.reader import LOPENR_MAX, _idents
from npr_pipeline.intake.reasons import Reason
from npr_pipeline.intake.safe_xml import check_encoding, declared_encoding, hardened_iterparse
from npr_pipeline.intake.typed_reader import read_typed
from npr_pipeline.intake.validation import HEAD_BYTES
from npr_pipeline.messages import MessageType
from npr_pipeline.quality.report_checks import check_report
from npr_pipeline.schemas import MSGHEAD_NS
from npr_pipeline.store.events import CONTEXT

MH = f"{{{MSGHEAD_NS}}}"
NATIVE_ENCODINGS = frozenset({"utf-8", "utf8", "iso-8859-1"})
"""Declared encodings (lower case) both libxml2s, the system's and lxml's own, decode by
their built-in converters, not iconv: the only ones :func:`untyped_by_probe` answers for."""


@dataclass
class DailyRead:
    """What a worker learned of one daily file: its gate, type, attributes, rows or reasons."""

    header: Header
    gate: GateResult
    message: MessageType | None = None
    attrs: dict[str, str] = field(default_factory=dict)
    records: int = 0
    lopenr: int | None = None  # set once the file has validated (the schema bounds it)
    tables: dict[str, pa.Table] = field(default_factory=dict)
    reasons: list[Reason] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)  # a report's catalogue findings

    @property
    def version(self) -> str | None:
        return self.message.version if self.message else None

    @property
    def year(self) -> int | None:
        return self.message.data_year if self.message else None


def daily_header(path: Path) -> Header | None:
    """The MsgHead header if the file is of a type the folders describe (a daily event type or
    a report type); None for any other file (also one
    that is not XML: the monthly reader gives its reasons)."""
    try:
        with open(path, "rb") as fh:
            for _, info in hardened_iterparse(fh, ("end",), (f"{MH}MsgInfo",)):
                type_el = info.find(f"{MH}Type")
                msg_type = type_el.get("V") if type_el is not None else None
                if msg_type not in typed_types():
                    return None
                return Header(
                    msg_type=msg_type,
                    sender=_idents(info.find(f"{MH}Sender")),
                    receiver=_idents(info.find(f"{MH}Receiver")),
                    sender_name=info.findtext(f"{MH}Sender/{MH}Organisation/{MH}OrganisationName"),
                )
    except etree.XMLSyntaxError:
        return None
    return None


def untyped_by_probe(path: Path) -> bool:
    """Whether the native probe (:func:`npr_pipeline.intake.native.probe`) proves that
    :func:`daily_header` returns None and that
    :func:`~npr_pipeline.intake.safe_xml.check_prolog` passes, so that intake may skip both
    lxml parses (about 1 ms of a file's reading) and go straight to the monthly reader.

    True only when libxml2 parsed the file from its first byte to the end of the first
    MsgInfo without one error or warning, found no DOCTYPE, a root ``MsgHead`` in MsgHead's
    namespace, no MsgInfo inside that MsgInfo, and that MsgInfo's Type is not one of
    :func:`typed_types`. Why each old check then answers as it would have:

    - :func:`daily_header` returns a header only for the first MsgInfo whose end lxml reports,
      and only if its first ``Type`` child's ``V`` is typed. With no MsgInfo nested in it, the
      first MsgInfo to end is the first to start, the one the probe read; ``find`` takes the
      first direct child, as the probe does; both read ``V`` by the XML rules (character
      references, predefined entities, whitespace normalised: the probe decodes as the native
      pass does). An error lxml meets before that only makes it None as well.
    - :func:`~npr_pipeline.intake.safe_xml.check_prolog` looks at the root's start event, and
      lxml's iterparse hands over the events parsed before an error in the same chunk before
      raising it (asserted in tests/test_native_probe.py), so only the bytes up to the root's
      start tag count: a prefix of what the probe read cleanly, with no DOCTYPE (a docinfo's
      doctype, internal DTD and system URL all need one) and the root MsgHead.
    - Encodings: the probe reads only a file that
      :func:`~npr_pipeline.intake.safe_xml.check_encoding` lets through (no UTF-16/32 or
      EBCDIC) and that declares none or one of :data:`NATIVE_ENCODINGS`: any other takes the
      careful route, where :func:`~npr_pipeline.intake.validation.precheck` decides as
      before. The other names check_encoding accepts are iconv's business, and the two
      libxml2s' iconvs differ: lxml's refuses ``latin-1``, which the system's reads (the
      property tests found it). An encoding declaration check_encoding's pattern cannot read
      (a name of other characters) libxml2 refuses too (no answer). A typed type is an ASCII
      name, the same in either encoding.
    - Parser versions: the probe is the system's libxml2 (as the native pass), lxml carries
      its own, newer one. The equivalence holds as long as no prefix the older one reads
      without a diagnostic is an error for the newer one: the property tests of the probe
      compare the two on generated and hostile files.
    """
    with open(path, "rb") as fh:
        if not probe_reads_as_lxml(fh.read(HEAD_BYTES)):
            return False
    found = native.probe(str(path))
    return found is not None and found not in typed_types()


def probe_reads_as_lxml(head: bytes) -> bool:
    """Whether the probe's libxml2 decodes a file starting with ``head`` as lxml's does: an
    encoding :func:`~npr_pipeline.intake.safe_xml.check_encoding` accepts, declared as one of
    :data:`NATIVE_ENCODINGS` or not at all (UTF-8). (A UTF-8 byte-order mark before a
    declaration of another encoding, which libxml2 2.9 decodes by the declaration and lxml's
    by the mark, is check_encoding's ``encoding_error``: the soak's property test found a
    file the two read differently.)"""
    if check_encoding(head) is not None:
        return False
    declared = declared_encoding(head)
    return declared is None or declared.lower() in NATIVE_ENCODINGS


def read_daily(path: Path, header: Header, index: RegistryIndex, submission_id: str) -> DailyRead:
    """Gate and read one daily or report file (its size already checked by the caller)."""
    result = DailyRead(header, check_header(header, index))
    if result.gate.rejected:
        return result
    unit = result.gate.unit["reshID"] if result.gate.unit else "test"
    typed = read_typed(path, {"submission_id": submission_id, "unit": unit})
    result.message, result.attrs, result.records = typed.message, typed.attrs, typed.records
    result.reasons = [*typed.errors, *typed.warnings]
    if not typed.ok:
        return result
    assert typed.message is not None
    year = typed.message.data_year
    result.lopenr = xs_integer(typed.attrs["lopenr"], maximum=LOPENR_MAX)
    if result.gate.unit is not None:
        check_active(result.gate, result.gate.unit, date(year, 1, 1), date(year, 12, 31))
    constants = {"year": str(year), "lopenr": str(result.lopenr)}
    result.tables = {name: _with_context(table, constants) for name, table in typed.tables.items()}
    if not typed.message.is_event:
        result.findings = check_report(result.tables)
    return result


def _with_context(table: pa.Table, constants: dict[str, str]) -> pa.Table:
    """The reader's rows with every context column of :data:`CONTEXT`, in that order, first."""
    for name, value in constants.items():
        table = table.append_column(name, pa.repeat(pa.scalar(value), table.num_rows))
    rest = [n for n in table.column_names if n not in CONTEXT]
    return table.select([*CONTEXT, *rest])
