"""What both readers share before and around their pass: the safe opening of a file and the
technical contacts.

The monthly reader (:mod:`npr_pipeline.intake.reader`) and the reader of every other type
(:mod:`npr_pipeline.intake.typed_reader`) are the same native libxml2 pass that validates while
it extracts (:mod:`npr_pipeline.intake.native`), so a unit gets the same answer for the same
fault whichever reads its file: both refuse a file before parsing through :func:`precheck`
(empty, too large, an encoding the standard does not allow, a DOCTYPE: billion laughs, external
entities; a root other than MsgHead), report libxml2's schema errors with the fødselsnummer
masked (CONTRACT.md: never one in an answer), the source line and the element named so a unit
can find it (``Episode episodeID=…``), and classify syntax errors with
:func:`~npr_pipeline.intake.safe_xml.native_syntax_error`.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from npr_pipeline.feedback.address import valid_address
from npr_pipeline.intake.reasons import Reason, reason
from npr_pipeline.intake.safe_xml import check_encoding, check_prolog

Finding = Reason
"""A validation finding is a reason like any other (code, message, line, element)."""

HEAD_BYTES = 1024  # enough for a byte-order mark and the XML declaration


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


def technical_contact(contact: Mapping[str, str]) -> str | None:
    """The e-mail of a ``Kontaktperson`` (its attributes as the native pass hands them over) of
    type 1 (technical contact) with a valid address,
    else None. A file of a type that can carry contacts but has none such is accepted with the
    warning :func:`contact_warning`: its answers then reach the unit by EDI only."""
    address = contact.get("epost")
    return address if contact.get("typeKontaktperson") == "1" and valid_address(address) else None


def contact_warning() -> Finding:
    """The warning of a file without a technical contact to e-mail (never a rejection)."""
    return reason("no_technical_contact", severity="warning")
