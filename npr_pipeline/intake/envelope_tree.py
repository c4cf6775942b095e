"""The envelope of a submission (MsgHead and its elements outside the payload), built while the
native pass reads the file and checked against the header's schema when the pass ends.

The native pass validates the payload against its message type's schema and hands every
element outside it to the reader; without this check a header the national standard forbids
was read all the same (two ``Type`` elements in MsgInfo: the first counted; a GenDate that is
no date; a MIGversion of another version). Both readers build the envelope here, so the same
header fault gets the same answer whichever reader meets it. The envelope is a few dozen
elements: a tree and one validation of it cost far less than the file's own pass.
"""

from __future__ import annotations

from functools import cache

from lxml import etree

from npr_pipeline.feedback.schema_messages import mask_fodselsnummer
from npr_pipeline.intake.reasons import Reason, reason
from npr_pipeline.schemas import MSGHEAD_NS, SCHEMA_DIR, hardened_parser

HEADER_SCHEMA = SCHEMA_DIR / "msghead" / "MsgHead.xsd"
MAX_HEADER_ERRORS = 20  # a header has a few dozen elements; more tells a unit nothing new


@cache
def header_schema() -> etree.XMLSchema:
    """The register's MsgHead v1.2 schema (``npr_pipeline/schemas/msghead/MsgHead.xsd``)."""
    return etree.XMLSchema(etree.parse(str(HEADER_SCHEMA), hardened_parser()))


class EnvelopeTree:
    """The elements outside the payload as a tree, each with its line in the file."""

    def __init__(self) -> None:
        self._builder = etree.TreeBuilder()

    def start(self, tag: str, attrs: dict[str, str], line: int) -> Reason | None:
        """Add an element; a reason if it cannot be one. libxml2 only warns about a namespace
        name that is not a URI (``xmlns=" http://..."``), lxml refuses to build it: the
        file's answer (``not_xml``), never an internal error."""
        try:
            element = self._builder.start(tag, attrs)
        except ValueError as exc:
            return reason("not_xml", f"{exc}.")
        element.sourceline = line
        return None

    def data(self, text: str) -> None:
        self._builder.data(text)

    def end(self, tag: str) -> etree._Element:
        return self._builder.end(tag)

    def errors(self) -> list[Reason]:
        """The envelope's faults against the header schema (after a pass that read the whole
        file, every element ended); the payload inside ``Content`` is its own schema's."""
        schema = header_schema()
        if schema.validate(self._builder.close()):
            return []
        return [_reason(entry) for entry in list(schema.error_log)[:MAX_HEADER_ERRORS]]


def _reason(entry: etree._LogEntry) -> Reason:
    """One schema error as a unit reads it: MsgHead's namespace left out of the names, the
    line in the file and the element named (never a fødselsnummer: a Patient's Ident could
    hold one)."""
    message = mask_fodselsnummer(entry.message.replace(f"{{{MSGHEAD_NS}}}", ""))
    element = (entry.path or "").rsplit("/", 1)[-1].split(":")[-1].split("[")[0] or None
    return reason("header_schema_error", message, line=entry.line or None, element=element)
