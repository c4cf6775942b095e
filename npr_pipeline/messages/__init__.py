"""Message types as data: one folder per message type and version, read here, never coded.

Each folder ``messages/<kind>/<major>_<minor>_<patch>/`` holds ``schema.xsd`` (the message's
schema, importing the common types of ``schemas/<version>/NPR.xsd``: one source of truth for
those) and ``mapping.yaml`` (which elements are rows, which attributes are columns and their
types, the keys linking a child row to its parent, the table names). The generic reader
(:mod:`npr_pipeline.intake.typed_reader`) and the docs generator work from these alone, so a
new type or version is a new folder.

Today the folders hold the monthly messages ``ord`` (NPR_ORD) and ``ide`` (NPR_IDE) in both
versions the register receives, read by :mod:`npr_pipeline.intake.reader`, the daily event
messages of issue 13 (``kontakt``, ``henvisning``,
``ident``, ``avslutning``, and ``pasient`` and ``enhet``), accepted by intake from units on the
daily route (:mod:`npr_pipeline.intake.daily`), and the types of issue 14: ``kpp`` (NPR_KPP,
after the register's public KPP schema), ``forlop`` (the forløpsmelding, with its 2026
calendar), ``vtk`` (XPR_VTK, decisions on compulsory mental health care) and ``tsb``
(NPR-melding-TSB), whose records are whole reports, not events: intake receives them by the
same worker path (:mod:`npr_pipeline.intake.daily`) and :mod:`npr_pipeline.reports` consumes
them. The gate (:mod:`npr_pipeline.intake.gate`) knows the types and versions these folders
describe and nothing else: the version a data year needs is the folder whose ``data_years``
cover it (:func:`version_for`; formerly ``data/reference/message_versions.csv``: 2023 and 2025
57.0.1 from DOMAIN.md, 2024 assumed, 2026 58.0.1). Nothing else lists types or versions: the
synthetic generator, the tests and the benchmarks ask :func:`versions`, :func:`of_route`,
:func:`get` and :func:`by_namespace` (``tests/test_type_folders.py`` checks that no module keeps
its own list); :mod:`npr_pipeline.schemas` holds only what is below the types (the MsgHead
namespace, the common types, the hardened parser).

Mapping format (``mapping.yaml``)::

    message_type: NPR_KONTAKT        # MsgHead MsgInfo/Type V (code list 8279; ours)
    display_name: NPR-kontakt        # MsgHead MsgInfo/Type DN
    version: 58.0.1                  # must match the folder and Melding/@versjon
    data_years: [2026, 2026]         # the data years (first, last) whose files use it
    route: event                     # event (daily), report (whole reports) or monthly (ord, ide)
    title: ...                       # docs page title
    intro: ...                       # docs page introduction
    record: Kontakt                  # child of Institusjon: one event, validated and read alone
                                     # (a list for several: [Enhet, Objektholder]; the last is
                                     # the main record, the others precede it and are few)
    counted: episodes                # optional: the table whose rows the ledger counts
    tables:                          # in parent-before-child order
      - name: daily_contacts
        element: Kontakt             # path of local names below Institusjon
        key: [kontaktID]             # the record's own id; with the unit, its stable key
        unique: false                # true: a key occurs once per file (KPP's episodeID)
        columns: {kontaktID: string, endretTidspunkt: timestamp, ...}
      - name: daily_contact_diagnoses
        element: Kontakt/Diagnose
        parent: daily_contacts
        inherit: [kontaktID, ...]    # columns copied from the parent row
        key: [kontaktID, tilstNr]
        state: {table: diagnoses, rename: {kontaktID: episodeID}}
        columns: {tilstNr: int, ...}
      - name: procedures             # (ord) a table may sit deeper below its parent's element
        element: Objektholder/Episode/Tjeneste/Tiltak/Prosedyre
        parent: episodes
        line: false                  # no source line column (default: true)
        columns:
          seq: {type: int, from: position}             # the row's number under its parent row
          kodeNr: {type: string, from: Kode/@kodeNr}   # an attribute of the first child Kode

A column is an attribute of the row's element by its own name (``name: type``), or
``{type, from}`` with ``from`` one of ``@attr``, ``Child/@attr`` or ``position``. The reader
compiles the mapping once into the plan the native pass walks (:mod:`npr_pipeline.intake.native`).

``state`` (optional) names the table of the consolidated state (a monthly lake table, see
:mod:`npr_pipeline.store.consolidated`) that the table's rows become once the events are
applied, and which columns change name on the way; a table without it (the closings) has no
place in the state.

Column types: ``string`` (kept as sent: codes keep leading zeros), ``int`` (xs:integer, 32
bit), ``date`` (xs:date), ``timestamp`` (xs:dateTime as Norwegian local time) and ``decimal``
(xs:decimal as an exact ``Decimal`` with two fraction digits: money in kroner and øre, never a
float).

Optional entries:

- ``reception``: how the type is sent (header type, ``meldingstype``, period), for its docs
  page; without it the page describes a daily event message.
- ``calendar``: when the register receives the type (:class:`Calendar`); without it files reach
  production from the first day the type exists. :func:`reaches_production` reads it.
"""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Literal

import pyarrow as pa
from lxml import etree

from npr_pipeline import yamlfile
from npr_pipeline.schemas import hardened_parser

MESSAGES_DIR = Path(__file__).resolve().parent
ROOT_ENV = "NPR_MESSAGES_DIR"
"""The extension point: names another messages root (e.g. a copy holding a new type or version
folder) that every reader, the gate and the docs then use instead of :data:`MESSAGES_DIR`."""
NS_BASE = "http://www.npr.no/xmlstds/"
COLUMN_TYPES: dict[str, pa.DataType] = {
    "string": pa.string(),
    "int": pa.int32(),
    "date": pa.date32(),
    "timestamp": pa.timestamp("s"),
    "decimal": pa.decimal128(18, 2),
}
LINE_COLUMN = "line"


ROUTES = ("event", "report", "monthly")
"""What a type's records are: ``event`` (daily events applied to the consolidated state),
``report`` (whole reports such as KPP, the current one chosen by lopenr) or ``monthly`` (the
cumulative monthly messages ord and ide, each file replacing the unit's earlier ones)."""


class MappingError(ValueError):
    """A mapping.yaml that does not describe a usable mapping (a defect of ours, not a unit's)."""


@dataclass(frozen=True)
class ColumnSource:
    """Where a column's value comes from: an attribute of the row's element or of its first
    child ``element``, or (``position``) the row's number, from 1, under its parent row."""

    element: str | None = None
    attribute: str | None = None
    position: bool = False


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
    unique: bool = False  # the key is unique in a file (checked by the reader across batches)
    state_table: str | None = None  # the consolidated state's table its rows become
    state_rename: tuple[tuple[str, str], ...] = ()  # (column here, column in the state)
    sources: tuple[ColumnSource, ...] = ()  # where each of ``columns`` comes from
    line: bool = True  # the row ends with its element's source line

    def arrow_schema(self, context: tuple[str, ...] = ()) -> pa.Schema:
        """Context columns (strings), inherited and own columns, then the source line."""
        fields = [pa.field(name, pa.string()) for name in context]
        fields += [pa.field(name, COLUMN_TYPES[kind]) for name, kind in self.all_columns()]
        if self.line:
            fields.append(pa.field(LINE_COLUMN, pa.int32()))
        return pa.schema(fields)

    def all_columns(self) -> tuple[tuple[str, str], ...]:
        """(name, type) of the inherited columns, then the table's own."""
        return self.inherit + self.columns


Phase = Literal["not_open", "trial", "start", "ordinary"]


@dataclass(frozen=True)
class Calendar:
    """When the register receives a type, e.g. the forløpsmelding's 2026 start (seed 000).

    From ``validation_from`` files are received, validated and answered in full; the trial
    period runs to ``trial_until``; every unit must have started by ``start_deadline``; from
    ``production_from`` on (ordinary reporting) its files reach production. Before that they get
    the same feedback and never reach production, so a trial cannot leak into official figures.
    """

    validation_from: date
    trial_until: date
    start_deadline: date
    production_from: date

    def phase(self, received: date) -> Phase:
        """The reception phase of a file received on ``received``."""
        if received < self.validation_from:
            return "not_open"
        if received <= self.trial_until:
            return "trial"
        if received < self.production_from:
            return "start"
        return "ordinary"


@dataclass(frozen=True)
class MessageType:
    """A message type and version as its folder describes it."""

    kind: str
    version: str
    message_type: str
    display_name: str
    title: str
    intro: str
    records: tuple[str, ...]  # the children of Institusjon that are records, in schema order
    tables: tuple[TableSpec, ...]
    folder: Path
    route: str
    reception: str | None = None
    calendar: Calendar | None = None
    counted: str | None = None  # the table whose rows the ledger counts as episodes
    data_years: tuple[int, int] = (0, 0)  # the first and last data year it is the version for

    def __hash__(self) -> int:
        """By kind and version (what names a type's folder), not every field: the dataclass's
        own hash walked every table spec on each call, ~90 us per look-up of a type's compiled
        schema or plan, twice per file (docs/benchmarks.md, session 13). Equal types have
        equal kinds and versions, so the hash stays consistent with ``==``."""
        return hash((self.kind, self.version))

    @property
    def record(self) -> str:
        """The main record element (the last listed: e.g. ``Objektholder`` after ``Enhet``)."""
        return self.records[-1]

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
        """The newest data year this version applies to (its docs page's year)."""
        return self.data_years[1]

    @property
    def is_event(self) -> bool:
        """Whether its records are events (the mapping's ``route: event``): the daily route's
        types, applied to the consolidated state."""
        return self.route == "event"

    @property
    def is_report(self) -> bool:
        """Whether its records are whole reports (``route: report``: KPP, the forløpsmelding,
        XPR_VTK, NPR-melding-TSB), received by any unit whose registry lists the type."""
        return self.route == "report"

    def schema(self) -> etree.XMLSchema:
        """The compiled schema, once per process."""
        return _compiled(self.schema_path)

    @property
    def has_contacts(self) -> bool:
        """Whether its schema lets a file name contacts (``Kontaktperson``; KPP's does not), so
        a file without a technical contact is told its answers go by EDI only."""
        return _declares(self.schema_path, "Kontaktperson")

    def table(self, name: str) -> TableSpec:
        for spec in self.tables:
            if spec.name == name:
                return spec
        raise KeyError(name)


@functools.cache
def _declares(path: Path, name: str) -> bool:
    tree = etree.parse(str(path), hardened_parser())
    xs = "{http://www.w3.org/2001/XMLSchema}element"
    return any(el.get("name") == name for el in tree.iter(xs))


@functools.cache
def _compiled(path: Path) -> etree.XMLSchema:
    return etree.XMLSchema(etree.parse(str(path), hardened_parser()))


def _table(raw: dict, kind: str, known: dict[str, TableSpec]) -> TableSpec:
    try:
        name, element = str(raw["name"]), tuple(str(raw["element"]).split("/"))
        where = f"{kind}/{raw['name']}"
        found = [(str(c), _column(c, t, where)) for c, t in raw["columns"].items()]
    except (KeyError, TypeError, AttributeError) as exc:
        raise MappingError(f"{kind}: a table needs name, element and columns ({exc})") from None
    columns = tuple((column, type_) for column, (type_, _) in found)
    sources = tuple(source for _, (_, source) in found)
    parent = raw.get("parent")
    inherited = tuple(str(c) for c in raw.get("inherit", ()))
    inherit: tuple[tuple[str, str], ...] = ()
    if parent is not None:
        if parent not in known:
            raise MappingError(f"{kind}/{name}: parent {parent!r} must be listed before it")
        above = known[parent].element
        if len(element) <= len(above) or element[: len(above)] != above:
            raise MappingError(f"{kind}/{name}: element must be below {parent}'s element")
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
    vault, unique = bool(raw.get("vault", False)), bool(raw.get("unique", False))
    line = bool(raw.get("line", True))
    return TableSpec(
        name, element, key, columns, parent, inherit, vault, unique, state_table, rename,
        sources, line,
    )  # fmt: skip


def _column(name: object, raw: object, where: str) -> tuple[str, ColumnSource]:
    """A column entry: ``type`` (the attribute of that name), or ``{type, from}`` with
    ``from`` one of ``@attr``, ``Child/@attr`` (the first such child) or ``position``."""
    spec = raw if isinstance(raw, dict) else {"type": raw}
    type_, origin = str(spec.get("type")), str(spec.get("from", f"@{name}"))
    if type_ not in COLUMN_TYPES:
        raise MappingError(f"{where}.{name}: unknown type {type_!r}")
    if origin == "position":
        if type_ != "int":
            raise MappingError(f"{where}.{name}: a position is an int")
        return type_, ColumnSource(position=True)
    element, _, attribute = origin.rpartition("@")
    element = element.rstrip("/")
    if not attribute or "/" in element or (element and not origin.startswith(f"{element}/@")):
        raise MappingError(f"{where}.{name}: from must be @attr, Child/@attr or position")
    return type_, ColumnSource(element or None, attribute)


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


def _calendar(raw: object, kind: str) -> Calendar | None:
    """The ``calendar`` entry: four dates in order, or none."""
    if raw is None:
        return None
    names = ("validation_from", "trial_until", "start_deadline", "production_from")
    if not isinstance(raw, dict) or set(raw) != set(names):
        raise MappingError(f"{kind}: calendar needs exactly {', '.join(names)}")
    days = [raw[name] for name in names]
    if not all(type(day) is date for day in days):
        raise MappingError(f"{kind}: calendar entries must be dates (YYYY-MM-DD)")
    first, trial, deadline, production = days
    if not first <= trial < production or not trial < deadline < production:
        raise MappingError(f"{kind}: calendar dates out of order")
    return Calendar(first, trial, deadline, production)


def load(folder: Path) -> MessageType:
    """The message type of one folder, checked for consistency."""
    kind, version = folder.parent.name, folder.name.replace("_", ".")
    with open(folder / "mapping.yaml", encoding="utf-8") as fh:
        raw = yamlfile.safe_load(fh)
    if str(raw.get("version")) != version:
        raise MappingError(f"{folder}: mapping version {raw.get('version')!r} != {version}")
    known: dict[str, TableSpec] = {}
    for item in raw.get("tables") or ():
        spec = _table(item, kind, known)
        if spec.name in known:
            raise MappingError(f"{kind}: table {spec.name} listed twice")
        known[spec.name] = spec
    record = raw.get("record", "")
    records = tuple(str(r) for r in record) if isinstance(record, list) else (str(record),)
    roots = sorted(t.element for t in known.values() if t.parent is None)
    if roots != sorted((r,) for r in records):
        raise MappingError(f"{kind}: exactly one table must map each record element {records}")
    route = str(raw.get("route"))
    if route not in ROUTES:
        raise MappingError(f"{kind}: route must be one of {', '.join(ROUTES)}, not {route!r}")
    counted = raw.get("counted")
    if counted is not None and counted not in known:
        raise MappingError(f"{kind}: counted names no table: {counted!r}")
    return MessageType(
        kind=kind,
        version=version,
        message_type=str(raw["message_type"]),
        display_name=str(raw["display_name"]),
        title=str(raw["title"]),
        intro=" ".join(str(raw["intro"]).split()),
        records=records,
        tables=tuple(known.values()),
        folder=folder,
        route=route,
        counted=counted,
        reception=" ".join(str(raw["reception"]).split()) if raw.get("reception") else None,
        calendar=_calendar(raw.get("calendar"), kind),
        data_years=_data_years(raw.get("data_years"), kind),
    )


def _data_years(raw: object, kind: str) -> tuple[int, int]:
    """``data_years: [first, last]``: the data years whose files must use this version (NPR
    accepts exactly one version per type and data year)."""
    if not isinstance(raw, list) or len(raw) != 2 or not all(type(y) is int for y in raw):
        raise MappingError(f"{kind}: data_years needs [first, last] (two years)")
    first, last = raw
    if first > last:
        raise MappingError(f"{kind}: data_years out of order: {first} > {last}")
    return first, last


def messages_root() -> Path:
    """The folder holding one subfolder per type and version: :data:`MESSAGES_DIR`, or the
    folder named by the environment variable ``NPR_MESSAGES_DIR`` (:data:`ROOT_ENV`)."""
    return Path(os.environ.get(ROOT_ENV) or MESSAGES_DIR)


def all_types() -> tuple[MessageType, ...]:
    """Every message type folder under :func:`messages_root`, sorted by kind and version.

    Cached by the root's spelling, not a ``Path``: intake asks several times per file, and
    building the path each time cost more than the rest of the look-up (~0.1 ms per file)."""
    return _types_under(os.environ.get(ROOT_ENV) or _DEFAULT_ROOT)


_DEFAULT_ROOT = str(MESSAGES_DIR)


@functools.cache
def _types_under(root: str) -> tuple[MessageType, ...]:
    folders = sorted(p.parent for p in Path(root).glob("*/*/mapping.yaml"))
    found = tuple(load(folder) for folder in folders)
    for mtype in found:  # one version per type and data year
        first, last = mtype.data_years
        for other in found:
            same = other.message_type == mtype.message_type and other is not mtype
            if same and other.data_years[0] <= last and first <= other.data_years[1]:
                raise MappingError(
                    f"{mtype.kind} {mtype.version} and {other.version}: their data_years overlap"
                )
    return found


def version_for(message_type: str, year: int) -> str | None:
    """The version of ``message_type`` (its ``MsgInfo/Type``) whose folder covers data year
    ``year``, or None: what the gate demands of a file of that year."""
    for mtype in all_types():
        first, last = mtype.data_years
        if mtype.message_type == message_type and first <= year <= last:
            return mtype.version
    return None


def versions(kind: str) -> tuple[str, ...]:
    """The versions the folders hold of ``kind`` (e.g. ``ord``), oldest data years first; a clear
    error naming the known kinds for a kind without a folder."""
    found = sorted((t for t in all_types() if t.kind == kind), key=lambda t: t.data_years)
    if not found:
        known = ", ".join(sorted({t.kind for t in all_types()}))
        raise ValueError(f"unknown message kind {kind!r}; known: {known}")
    return tuple(t.version for t in found)


def of_route(route: str) -> tuple[MessageType, ...]:
    """Every type and version of a route (:data:`ROUTES`), e.g. ``monthly``: ord and ide in
    each version the folders hold."""
    if route not in ROUTES:
        raise ValueError(f"unknown route {route!r}; routes: {', '.join(ROUTES)}")
    return tuple(t for t in all_types() if t.route == route)


def monthly_types() -> tuple[str, ...]:
    """The MsgHead types of the monthly route (``route: monthly``: NPR_ORD and NPR_IDE), which
    every monthly unit sends together for each period."""
    return tuple(sorted({t.message_type for t in of_route("monthly")}))


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


def by_message_type(message_type: str) -> MessageType | None:
    """The newest version of the type whose MsgHead ``MsgInfo/Type`` is ``message_type``."""
    found = [t for t in all_types() if t.message_type == message_type]
    return max(found, key=lambda t: t.data_year, default=None)


def _resolve(message_type: MessageType | str) -> MessageType:
    if isinstance(message_type, MessageType):
        return message_type
    found = by_message_type(message_type)
    if found is None:
        known = ", ".join(sorted({t.message_type for t in all_types()}))
        raise ValueError(f"unknown message type {message_type!r}; known: {known}")
    return found


def reception_phase(message_type: MessageType | str, received: date) -> Phase:
    """The phase of the type's calendar a file received on ``received`` falls in.

    A type without a calendar is in ordinary reporting whenever it is received.
    """
    mtype = _resolve(message_type)
    return "ordinary" if mtype.calendar is None else mtype.calendar.phase(received)


def reaches_production(message_type: MessageType | str, received: date) -> bool:
    """Whether an accepted file of this type (a MessageType or its ``MsgInfo/Type`` code),
    received on ``received``, may enter production; before ordinary reporting it gets full
    feedback only. Intake calls this after the gate and the schema have accepted the file."""
    return reception_phase(message_type, received) == "ordinary"
