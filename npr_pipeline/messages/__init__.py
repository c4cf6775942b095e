"""Message types as data: one folder per message type and version, read here, never coded.

Each folder ``messages/<kind>/<major>_<minor>_<patch>/`` holds ``schema.xsd`` (the message's
schema, importing the common types of ``schemas/<version>/NPR.xsd``: one source of truth for
those) and ``mapping.yaml`` (which elements are rows, which attributes are columns and their
types, the keys linking a child row to its parent, the table names). The generic reader
(:mod:`npr_pipeline.intake.typed_reader`) and the docs generator work from these alone, so a
new type or version is a new folder.

Today the folders hold the daily event messages of issue 13 (``kontakt``, ``henvisning``,
``ident``, ``avslutning``). Intake accepts every type a folder describes, from units on the
daily route (:mod:`npr_pipeline.intake.daily`); ``schemas.MSG_TYPES`` lists the monthly types.

Mapping format (``mapping.yaml``)::

    message_type: NPR_KONTAKT        # MsgHead MsgInfo/Type V (code list 8279; ours)
    display_name: NPR-kontakt        # MsgHead MsgInfo/Type DN
    version: 58.0.1                  # must match the folder and Melding/@versjon
    title: ...                       # docs page title
    intro: ...                       # docs page introduction
    record: Kontakt                  # child of Institusjon: one event, validated and read alone
    tables:                          # in parent-before-child order
      - name: daily_contacts
        element: Kontakt             # path of local names below Institusjon
        key: [kontaktID]             # the record's own id; with the unit, its stable key
        columns: {kontaktID: string, endretTidspunkt: timestamp, ...}
      - name: daily_contact_diagnoses
        element: Kontakt/Diagnose
        parent: daily_contacts
        inherit: [kontaktID, ...]    # columns copied from the parent row
        key: [kontaktID, tilstNr]
        state: {table: diagnoses, rename: {kontaktID: episodeID}}
        columns: {tilstNr: int, ...}

``state`` (optional) names the table of the consolidated state (a monthly lake table, see
:mod:`npr_pipeline.store.consolidated`) that the table's rows become once the events are
applied, and which columns change name on the way; a table without it (the closings) has no
place in the state.

Column types: ``string`` (kept as sent: codes keep leading zeros), ``int`` (xs:integer, 32
bit), ``date`` (xs:date) and ``timestamp`` (xs:dateTime as Norwegian local time).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import yaml
from lxml import etree

from npr_pipeline.schemas import DATA_YEARS, hardened_parser

MESSAGES_DIR = Path(__file__).resolve().parent
NS_BASE = "http://www.npr.no/xmlstds/"
COLUMN_TYPES: dict[str, pa.DataType] = {
    "string": pa.string(),
    "int": pa.int32(),
    "date": pa.date32(),
    "timestamp": pa.timestamp("s"),
}
LINE_COLUMN = "line"


class MappingError(ValueError):
    """A mapping.yaml that does not describe a usable mapping (a defect of ours, not a unit's)."""


@dataclass(frozen=True)
class TableSpec:
    """One lake table of a message type: the rows of one element path."""

    name: str
    element: tuple[str, ...]
    key: tuple[str, ...]
    columns: tuple[tuple[str, str], ...]
    parent: str | None = None
    inherit: tuple[tuple[str, str], ...] = ()  # (column, type) copied from the parent row
    vault: bool = False
    state_table: str | None = None  # the consolidated state's table its rows become
    state_rename: tuple[tuple[str, str], ...] = ()  # (column here, column in the state)

    def arrow_schema(self, context: tuple[str, ...] = ()) -> pa.Schema:
        """Context columns (strings), inherited and own columns, then the source line."""
        fields = [pa.field(name, pa.string()) for name in context]
        fields += [pa.field(name, COLUMN_TYPES[kind]) for name, kind in self.all_columns()]
        return pa.schema([*fields, pa.field(LINE_COLUMN, pa.int32())])

    def all_columns(self) -> tuple[tuple[str, str], ...]:
        """(name, type) of the inherited columns, then the table's own."""
        return self.inherit + self.columns


@dataclass(frozen=True)
class MessageType:
    """A message type and version as its folder describes it."""

    kind: str
    version: str
    message_type: str
    display_name: str
    title: str
    intro: str
    record: str
    tables: tuple[TableSpec, ...]
    folder: Path

    @property
    def namespace(self) -> str:
        """The payload namespace, e.g. ``http://www.npr.no/xmlstds/58_0_1_kontakt``."""
        return f"{NS_BASE}{self.version.replace('.', '_')}_{self.kind}"

    @property
    def schema_path(self) -> Path:
        return self.folder / "schema.xsd"

    @property
    def mapping_path(self) -> Path:
        return self.folder / "mapping.yaml"

    @property
    def data_year(self) -> int:
        return DATA_YEARS[self.version]

    def schema(self) -> etree.XMLSchema:
        """The compiled schema, once per process."""
        return _compiled(self.schema_path)

    def table(self, name: str) -> TableSpec:
        for spec in self.tables:
            if spec.name == name:
                return spec
        raise KeyError(name)


@functools.cache
def _compiled(path: Path) -> etree.XMLSchema:
    return etree.XMLSchema(etree.parse(str(path), hardened_parser()))


def _table(raw: dict, kind: str, known: dict[str, TableSpec]) -> TableSpec:
    try:
        name, element = str(raw["name"]), tuple(str(raw["element"]).split("/"))
        columns = tuple((str(c), str(t)) for c, t in raw["columns"].items())
    except (KeyError, TypeError, AttributeError) as exc:
        raise MappingError(f"{kind}: a table needs name, element and columns ({exc})") from None
    for column, kind_ in columns:
        if kind_ not in COLUMN_TYPES:
            raise MappingError(f"{kind}/{name}.{column}: unknown type {kind_!r}")
    parent = raw.get("parent")
    inherited = tuple(str(c) for c in raw.get("inherit", ()))
    inherit: tuple[tuple[str, str], ...] = ()
    if parent is not None:
        if parent not in known:
            raise MappingError(f"{kind}/{name}: parent {parent!r} must be listed before it")
        if element[:-1] != known[parent].element:
            raise MappingError(f"{kind}/{name}: element must be a child of {parent}'s element")
        parent_types = dict(known[parent].all_columns())
        for column in inherited:
            if column not in parent_types:
                raise MappingError(f"{kind}/{name}: {parent} has no column {column!r}")
        inherit = tuple((column, parent_types[column]) for column in inherited)
    elif inherited or len(element) != 1:
        raise MappingError(f"{kind}/{name}: a table without a parent is the record itself")
    names = [c for c, _ in inherit + columns]
    if len(set(names)) != len(names) or LINE_COLUMN in names:
        raise MappingError(f"{kind}/{name}: column names must be unique and not {LINE_COLUMN!r}")
    key = tuple(str(c) for c in raw.get("key", ()))
    if not key or not set(key) <= set(names):
        raise MappingError(f"{kind}/{name}: key {key} must name columns of the table")
    state_table, rename = _state(raw.get("state"), f"{kind}/{name}", names)
    vault = bool(raw.get("vault", False))
    return TableSpec(name, element, key, columns, parent, inherit, vault, state_table, rename)


def _state(raw: object, where: str, names: list[str]) -> tuple[str | None, tuple]:
    """The ``state`` section: the state table's name and the renamed columns."""
    if raw is None:
        return None, ()
    if not isinstance(raw, dict) or not isinstance(raw.get("table"), str):
        raise MappingError(f"{where}: state needs a table name")
    rename = raw.get("rename") or {}
    if not isinstance(rename, dict) or not set(rename) <= set(names):
        raise MappingError(f"{where}: state.rename must map columns of the table")
    return raw["table"], tuple((str(k), str(v)) for k, v in rename.items())


def load(folder: Path) -> MessageType:
    """The message type of one folder, checked for consistency."""
    kind, version = folder.parent.name, folder.name.replace("_", ".")
    with open(folder / "mapping.yaml", encoding="utf-8") as fh:
        raw = yaml.safe_load(fh)
    if str(raw.get("version")) != version:
        raise MappingError(f"{folder}: mapping version {raw.get('version')!r} != {version}")
    known: dict[str, TableSpec] = {}
    for item in raw.get("tables") or ():
        spec = _table(item, kind, known)
        if spec.name in known:
            raise MappingError(f"{kind}: table {spec.name} listed twice")
        known[spec.name] = spec
    record = str(raw.get("record", ""))
    roots = [t for t in known.values() if t.parent is None]
    if len(roots) != 1 or roots[0].element != (record,):
        raise MappingError(f"{kind}: exactly one table must map the record element {record!r}")
    return MessageType(
        kind=kind,
        version=version,
        message_type=str(raw["message_type"]),
        display_name=str(raw["display_name"]),
        title=str(raw["title"]),
        intro=" ".join(str(raw["intro"]).split()),
        record=record,
        tables=tuple(known.values()),
        folder=folder,
    )


@functools.cache
def all_types() -> tuple[MessageType, ...]:
    """Every message type folder, sorted by kind and version."""
    folders = sorted(p.parent for p in MESSAGES_DIR.glob("*/*/mapping.yaml"))
    return tuple(load(folder) for folder in folders)


def by_namespace(ns: str) -> MessageType | None:
    """The message type whose payload namespace is ``ns``, or None."""
    return next((t for t in all_types() if t.namespace == ns), None)


def get(kind: str, version: str) -> MessageType:
    """A message type by kind and version; a clear error naming what exists otherwise."""
    for mtype in all_types():
        if (mtype.kind, mtype.version) == (kind, version):
            return mtype
    known = ", ".join(f"{t.kind} {t.version}" for t in all_types())
    raise ValueError(f"unknown message type {kind!r} version {version!r}; known: {known}")
