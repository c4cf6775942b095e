"""The NPR common types (one folder per message version) and the monthly messages' namespaces.

NPR accepts only the message version that applies to the data year, so every version we
receive has its own folder `<major>_<minor>_<patch>/` holding `NPR.xsd` (common types, imported
by every message schema). The message schemas themselves live with their mappings, one folder
per type and version (`npr_pipeline/messages/ord/58_0_1/schema.xsd`, :mod:`npr_pipeline.messages`);
the synthetic generator and the tools find the monthly ones here, never by building paths
themselves.
"""

from __future__ import annotations

import functools
import re
from pathlib import Path

from lxml import etree

SCHEMA_DIR = Path(__file__).resolve().parent
VERSIONS = ("57.0.1", "58.0.1")
MSGHEAD_NS = "http://www.kith.no/xmlstds/msghead/2006-05-24"
MSG_TYPES = {"NPR_ORD": "ord", "NPR_IDE": "ide"}
NPR_ORD = "NPR_ORD"
NPR_IDE = "NPR_IDE"

_NS_BASE = "http://www.npr.no/xmlstds/"
_NS_PATTERN = re.compile(r"http://www\.npr\.no/xmlstds/(\d+)_(\d+)_(\d+)_([a-z]+)")


def _check(version: str, msg: str) -> None:
    """Reject unknown versions and message kinds early, naming what is accepted."""
    if version not in VERSIONS:
        raise ValueError(f"unknown NPR message version {version!r}; known: {', '.join(VERSIONS)}")
    if msg not in MSG_TYPES.values():
        known = ", ".join(MSG_TYPES.values())
        raise ValueError(f"unknown NPR message kind {msg!r}; known: {known}")


def namespace(version: str, msg: str) -> str:
    """The target namespace of a message schema, e.g. `.../xmlstds/58_0_1_ord`."""
    _check(version, msg)
    return f"{_NS_BASE}{version.replace('.', '_')}_{msg}"


def parse_namespace(ns: str) -> tuple[str, str] | None:
    """(version, msg) of one of our message namespaces, or None for any other namespace.

    An NPR namespace of a version we do not hold (e.g. 56.0.1) also gives None: callers treat
    it like any foreign document instead of failing later when asking for its schema.
    """
    match = _NS_PATTERN.fullmatch(ns)
    if match is None:
        return None
    version, msg = ".".join(match.groups()[:3]), match.group(4)
    if version not in VERSIONS or msg not in MSG_TYPES.values():
        return None
    return version, msg


def schema_path(version: str, msg: str) -> Path:
    """Path of a monthly message schema (ord or ide) of a version: its type folder's."""
    _check(version, msg)
    return SCHEMA_DIR.parent / "messages" / msg / version.replace(".", "_") / "schema.xsd"


def common_path(version: str) -> Path:
    """Path of a version's common types, ``NPR.xsd``."""
    _check(version, "ord")
    return SCHEMA_DIR / version.replace(".", "_") / "NPR.xsd"


def hardened_parser() -> etree.XMLParser:
    """An XML parser that never expands entities, loads DTDs or touches the network.

    Used for schemas here and meant for untrusted submissions too: files from thousands of
    senders must not be able to read local files or reach out (XXE, billion laughs).
    """
    return etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False)


@functools.cache
def schema(version: str, msg: str) -> etree.XMLSchema:
    """The compiled schema of a message version and kind, compiled once per process."""
    path = schema_path(version, msg)
    return etree.XMLSchema(etree.parse(str(path), hardened_parser()))
