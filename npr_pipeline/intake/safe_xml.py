"""Hardened XML reading: what a hostile or broken file can never make the parser do.

Every parser here refuses DTD loading, entity expansion, network access and libxml2's
huge-tree mode. A DOCTYPE of any kind is rejected before the body is read (billion laughs,
external entities and external DTDs all need one); only UTF-8 and ISO-8859-1 are accepted, as
the national message standard allows; syntax errors are classified into reasons a unit can act
on (truncated transfer, wrong encoding, not XML).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from lxml import etree

from npr_pipeline.intake.reasons import Reason, reason
from npr_pipeline.schemas import MSGHEAD_NS

ACCEPTED_ENCODINGS = {"utf-8", "utf8", "iso-8859-1", "iso8859-1", "latin-1", "latin1"}
_DECLARATION = re.compile(rb"^<\?xml[^>]*encoding\s*=\s*[\"']([A-Za-z0-9._-]+)[\"']")
_UTF8 = {"utf-8", "utf8"}
_UTF8_MARK = b"\xef\xbb\xbf"
_ENCODING_ERRORS = (9, 81)  # libxml2: not proper UTF-8 / invalid bytes in encoding
# libxml2's messages (code 9 too) for &#0;, &#xD800;, &#99999999999;: a character reference
# naming a character XML does not allow, in bytes that are fine
_CHARREF = "xmlParseCharRef:"
_HARDENED = {
    "resolve_entities": False,
    "no_network": True,
    "load_dtd": False,
    "huge_tree": False,
    "dtd_validation": False,
}


def hardened_iterparse(
    source: Path | BinaryIO, events: tuple[str, ...], tag: object = None
) -> Iterator:
    """``lxml.etree.iterparse`` with every dangerous feature off (a path or an open file).

    libxml2 keeps one error log per thread, and iterparse's syntax errors carry it whole: the
    log is cleared first, so a file's errors are its own (an earlier file's undefined entity
    made a later truncated file ``entity_forbidden``).
    """
    etree.clear_error_log()
    return etree.iterparse(
        str(source) if isinstance(source, Path) else source,
        events=events,
        tag=tag,
        remove_comments=True,
        remove_pis=True,
        **_HARDENED,
    )


def check_encoding(head: bytes) -> Reason | None:
    """Reject UTF-16/32 and EBCDIC (with or without a byte-order mark, XML 1.0 appendix F),
    any declared encoding other than UTF-8 / ISO-8859-1, and a UTF-8 byte-order mark before
    a declaration of another encoding: the file says two encodings, and the two libxml2s read
    it by different ones (the system's, the native pass's, by the declaration: UTF-8 text
    under the mark would reach the lake as mojibake)."""
    if head.startswith((b"\xff\xfe", b"\xfe\xff")) or b"\x00" in head[:4]:
        return reason("unsupported_encoding", "The file is UTF-16 or UTF-32.")
    if head.startswith(b"\x4c\x6f\xa7\x94"):
        return reason("unsupported_encoding", "The file is EBCDIC.")
    declared = declared_encoding(head)
    if declared is not None and declared.lower() not in ACCEPTED_ENCODINGS:
        return reason("unsupported_encoding", f"Declared: {declared}.")
    if head.startswith(_UTF8_MARK) and declared is not None and declared.lower() not in _UTF8:
        detail = f"A UTF-8 byte-order mark, but the declaration says {declared}."
        return reason("encoding_error", detail)
    return None


def declared_encoding(head: bytes) -> str | None:
    """The encoding the XML declaration names (after a UTF-8 byte-order mark), None without."""
    body = head[3:] if head.startswith(_UTF8_MARK) else head
    match = _DECLARATION.match(body)
    return match.group(1).decode("ascii") if match else None


def check_prolog(path: Path) -> Reason | None:
    """Read up to the root element only: no DOCTYPE, and the root must be MsgHead."""
    try:  # our own handle: leaving the parse at the root must not leave the file open
        with open(path, "rb") as handle:
            for _, root in hardened_iterparse(handle, events=("start",)):
                docinfo = root.getroottree().docinfo
                if docinfo.doctype or docinfo.internalDTD is not None or docinfo.system_url:
                    return reason("doctype_forbidden", f"Found: {docinfo.doctype[:200]}")
                if root.tag != f"{{{MSGHEAD_NS}}}MsgHead":
                    return reason("not_msghead", f"Root element: {_short(root.tag)}.")
                return None
    except etree.XMLSyntaxError as exc:
        return classify_syntax_error(exc, path, started=False)
    return reason("not_xml", "No element found.")


def classify_syntax_error(exc: etree.XMLSyntaxError, path: Path, started: bool) -> Reason:
    """Turn lxml's syntax error into the reason a unit can act on."""
    first = exc.error_log[0] if len(exc.error_log) else None
    code = first.type if first is not None else exc.code
    message = first.message if first is not None else exc.msg
    line = first.line if first is not None else (exc.position[0] if exc.position else None)
    entity = any("ENTITY" in entry.type_name for entry in exc.error_log)
    return classify_parse_error(code, message, line, entity, path, started)


def classify_parse_error(
    code: int, message: str, line: int | None, entity: bool, path: Path, started: bool
) -> Reason:
    """The reason for libxml2's first error ``code`` / ``message`` at ``line`` (``entity``:
    any of the file's errors was about an entity), from lxml or the native pass alike."""
    detail = f"Parser: {message}"
    if entity or "entity" in message.lower():
        return reason("entity_forbidden", detail, line=line)
    if message.startswith(_CHARREF):  # the bytes are fine, the reference is not
        return reason("not_xml", detail, line=line)
    if code in _ENCODING_ERRORS or "encoding" in message.lower():
        return reason("encoding_error", detail, line=line)
    if started and not _ends_with_root(path):
        return reason("truncated", detail, line=line)
    return reason("not_xml", detail, line=line)


def native_syntax_error(errors: list[tuple[int, int, int, str, int]], path: Path) -> Reason:
    """The reason for a file the native pass could not read to its end, from its first
    ``(domain, code, level, message, line)`` error (any about an entity makes it one)."""
    if not errors:
        return reason("not_xml", "Parser: the document is not well-formed.")
    _, code, _, message, line = errors[0]
    entity = any(is_entity_error(error[1]) for error in errors)
    return classify_parse_error(code, message, line or None, entity, path, True)


def is_entity_error(code: int) -> bool:
    """Whether a libxml2 error code is about an entity (its name says ENTITY, as lxml tells)."""
    return "ENTITY" in _ERROR_NAMES.get(code, "")


_ERROR_NAMES = {
    code: name for name, code in vars(etree.ErrorTypes).items() if isinstance(code, int)
}


def _ends_with_root(path: Path) -> bool:
    """A complete submission ends with the MsgHead end tag (whatever its prefix)."""
    with open(path, "rb") as fh:
        fh.seek(max(0, path.stat().st_size - 256))
        return fh.read().rstrip().endswith(b"MsgHead>")


def _short(tag: str) -> str:
    """``{ns}Name`` as ``Name (ns)`` for messages."""
    qname = etree.QName(tag)
    return f"{qname.localname} ({qname.namespace})" if qname.namespace else qname.localname
