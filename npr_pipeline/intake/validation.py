"""One validation for both readers: the safe opening of a file and what its schema finds.

The monthly reader (:mod:`npr_pipeline.intake.reader`, one native libxml2 pass that validates
while it extracts) and the reader of every other type (:mod:`npr_pipeline.intake.typed_reader`,
records inside a copied ``Melding`` shell, validated with lxml) read their files differently,
but a unit must get the same answer for the same fault whichever reads its file. So both refuse
a file before parsing through :func:`precheck`, and both mask and name their schema errors alike:

- :func:`precheck`, before a byte is parsed: empty, too large, an encoding the standard does
  not allow, a DOCTYPE (billion laughs, external entities), a root other than MsgHead;
- :func:`validate`, one element against its type's compiled schema: every libxml2 error as a
  ``schema_error`` with the fødselsnummer masked (CONTRACT.md: never one in an answer), its
  source line and the element named so a unit can find it (``Episode episodeID=…``).

The typed reader's parse is :func:`npr_pipeline.intake.safe_xml.hardened_iterparse` (every
dangerous libxml2 feature off), its syntax errors
:func:`~npr_pipeline.intake.safe_xml.classify_syntax_error`; the monthly reader's native pass
runs the same parser options and classifies its syntax errors with the same
:func:`~npr_pipeline.intake.safe_xml.classify_parse_error`.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from lxml import etree

from npr_pipeline.feedback.address import valid_address
from npr_pipeline.feedback.schema_messages import mask_fodselsnummer
from npr_pipeline.intake.reasons import Reason, reason
from npr_pipeline.intake.safe_xml import check_encoding, check_prolog

Finding = Reason
"""A validation finding is a reason like any other (code, message, line, element)."""

HEAD_BYTES = 1024  # enough for a byte-order mark and the XML declaration
RECORD_IDS = ("episodeID", "henvisningsperiodeID", "pasientNr", "pid")
"""Attributes that name a record to its unit (never the fødselsnummer ``fid``)."""


def precheck(path: Path, max_bytes: int | None = None) -> Finding | None:
    """Why the file must not be parsed at all, or None: empty, larger than ``max_bytes``, an
    encoding other than UTF-8 / ISO-8859-1, a DOCTYPE, or a root that is not MsgHead."""
    size = path.stat().st_size
    if size == 0:
        return reason("empty_file")
    if max_bytes is not None and size > max_bytes:
        return reason("too_large", f"{size:,} bytes > {max_bytes:,}.")
    with open(path, "rb") as fh:
        head = fh.read(HEAD_BYTES)
    return check_encoding(head) or check_prolog(path)


def validate(
    element: etree._Element, schema: etree.XMLSchema, line: int | None = None
) -> list[Finding]:
    """The schema's errors in ``element`` (none: valid), each a ``schema_error``.

    ``line`` is where the element sits in the file when libxml2 cannot tell: a skeleton or
    shell built by the reader has no source lines of its own; an error in a node read from the
    file keeps that node's line.
    """
    if schema.validate(element):
        return []
    return [
        reason(
            "schema_error",
            mask_fodselsnummer(entry.message),
            line=entry.line or line or element.sourceline,
            element=_element_name(element, entry.path),
        )
        for entry in schema.error_log
    ]


def technical_contact(contact: etree._Element | Mapping[str, str]) -> str | None:
    """The e-mail of a ``Kontaktperson`` (its element, or its attributes as the native pass
    hands them over) of type 1 (technical contact) with a valid address,
    else None. A file of a type that can carry contacts but has none such is accepted with the
    warning :func:`contact_warning`: its answers then reach the unit by EDI only."""
    address = contact.get("epost")
    return address if contact.get("typeKontaktperson") == "1" and valid_address(address) else None


def contact_warning() -> Finding:
    """The warning of a file without a technical contact to e-mail (never a rejection)."""
    return reason("no_technical_contact", severity="warning")


def _path_hint(path: str | None) -> str | None:
    """The last step of libxml2's node path, without namespace prefixes."""
    if not path:
        return None
    last = path.rsplit("/", 1)[-1]
    return last.split(":", 1)[-1]


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
        for attribute in RECORD_IDS:
            value = holder.get(attribute)
            if value:
                return (
                    f"{local} {attribute}={value}"
                    if holder is node
                    else (f"{local} ({attribute}={value})")
                )
    return local
