"""What lies below the message types: the MsgHead namespace, the NPR common types, the parser.

NPR accepts only the message version that applies to the data year, so every version we
receive has its own folder ``<major>_<minor>_<patch>/`` here holding ``NPR.xsd`` (common types,
imported by every message schema of that version). The message types themselves, their
versions, namespaces and schemas are data in their folders (:mod:`npr_pipeline.messages`, the
one source: ``versions``, ``get``, ``by_namespace``, ``MessageType.schema``); nothing here
lists them.
"""

from __future__ import annotations

from pathlib import Path

from lxml import etree

SCHEMA_DIR = Path(__file__).resolve().parent
MSGHEAD_NS = "http://www.kith.no/xmlstds/msghead/2006-05-24"


def common_path(version: str) -> Path:
    """Path of a version's common types, ``NPR.xsd``; a clear error for a version without them."""
    path = SCHEMA_DIR / version.replace(".", "_") / "NPR.xsd"
    if not path.is_file():
        known = ", ".join(
            sorted(p.parent.name.replace("_", ".") for p in SCHEMA_DIR.glob("*/NPR.xsd"))
        )
        raise ValueError(f"no NPR common types for version {version!r}; known: {known}")
    return path


def hardened_parser() -> etree.XMLParser:
    """An XML parser that never expands entities, loads DTDs or touches the network.

    Used for schemas here and meant for untrusted submissions too: files from thousands of
    senders must not be able to read local files or reach out (XXE, billion laughs).
    """
    return etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False)
