"""Write docs/messages/*.md from the annotations in the message schemas.

Every message type is described as data (``npr_pipeline/messages/<kind>/<version>/``: the
monthly ord and ide, the daily messages, the report types) and gets ``<kind>.md`` from its
``schema.xsd``, its ``mapping.yaml`` and the common types of ``NPR.xsd``: the newest version in
full, then the differences between versions where a kind has several.

The schemas are the single source of truth for attribute names, types and code lists; the
pages are generated so they cannot drift from them (a test compares the checked-in pages with
this module's output). Run `python -m npr_pipeline.schema_docs [OUT_DIR]` after changing a
schema.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from itertools import pairwise
from pathlib import Path

from lxml import etree

from npr_pipeline.messages import ColumnSource, MessageType, all_types
from npr_pipeline.schemas import common_path, hardened_parser

XS = "{http://www.w3.org/2001/XMLSchema}"
DOCS_DIR = Path(__file__).resolve().parents[1] / "docs" / "messages"


@dataclass(frozen=True)
class Attribute:
    """One attribute of a message class, as its schema declares and documents it."""

    name: str
    type: str
    required: bool
    fixed: str | None
    label: str
    doc: str
    oid: str
    own: bool


@dataclass(frozen=True)
class Child:
    """A child class reference with its cardinality."""

    name: str
    min: str
    max: str


@dataclass(frozen=True)
class MessageClass:
    """A global element of a message schema: a class of the NPR information model."""

    name: str
    label: str
    doc: str
    own: bool
    children: tuple[Child, ...]
    attributes: tuple[Attribute, ...]


@dataclass(frozen=True)
class SimpleType:
    """A common type of NPR.xsd; `values` holds (code, meaning) for code lists."""

    name: str
    base: str
    facets: str
    doc: str
    own: bool
    values: tuple[tuple[str, str], ...]


def _appinfo(node: etree._Element) -> dict[str, str]:
    """The node's appinfo texts by source, without the `source: ` prefix NPR schemas repeat."""
    infos: dict[str, str] = {}
    for info in node.iterfind(f"{XS}annotation/{XS}appinfo"):
        source = info.get("source", "")
        text = " ".join((info.text or "").split())
        infos[source] = text.removeprefix(f"{source}:").strip()
    return infos


def _documentation(node: etree._Element) -> str:
    """The node's documentation text, whitespace collapsed."""
    return " ".join(node.findtext(f"{XS}annotation/{XS}documentation", "").split())


def _local(qname: str) -> str:
    """A type name without its namespace prefix (`nprx:kommNr` -> `kommNr`)."""
    return qname.rpartition(":")[2]


def _attribute(node: etree._Element) -> Attribute:
    info = _appinfo(node)
    return Attribute(
        name=node.get("name", ""),
        type=_local(node.get("type", "")),
        required=node.get("use") == "required",
        fixed=node.get("fixed"),
        label=info.get("attributeName", ""),
        doc=info.get("attributeDoc", ""),
        oid=info.get("OID", ""),
        own=info.get("origin") == "own",
    )


def _message_class(element: etree._Element) -> MessageClass:
    info = _appinfo(element)
    complex_type = element.find(f"{XS}complexType")
    children = tuple(
        Child(_local(ref.get("ref", "")), ref.get("minOccurs", "1"), ref.get("maxOccurs", "1"))
        for ref in complex_type.iterfind(f"{XS}sequence/{XS}element")
    )
    attributes = tuple(_attribute(a) for a in complex_type.iterfind(f"{XS}attribute"))
    return MessageClass(
        name=element.get("name", ""),
        label=info.get("className", ""),
        doc=_documentation(element),
        own=info.get("origin") == "own",
        children=children,
        attributes=attributes,
    )


def read_classes(path: Path) -> dict[str, MessageClass]:
    """The classes of a message schema by element name, in schema order."""
    root = etree.parse(str(path), hardened_parser()).getroot()
    classes = (_message_class(e) for e in root.iterfind(f"{XS}element"))
    return {c.name: c for c in classes}


def _facets(restriction: etree._Element) -> str:
    parts = []
    for facet in restriction:
        if not isinstance(facet.tag, str) or facet.tag == f"{XS}enumeration":
            continue
        parts.append(f"{etree.QName(facet).localname} `{facet.get('value')}`")
    return ", ".join(parts)


def _simple_type(node: etree._Element) -> SimpleType:
    restriction = node.find(f"{XS}restriction")
    values = tuple(
        (e.get("value", ""), _documentation(e)) for e in restriction.iterfind(f"{XS}enumeration")
    )
    return SimpleType(
        name=node.get("name", ""),
        base=_local(restriction.get("base", "")),
        facets=_facets(restriction),
        doc=_documentation(node),
        own=_appinfo(node).get("origin") == "own",
        values=values,
    )


def read_types(path: Path) -> dict[str, SimpleType]:
    """The named simple types of a common-types schema (NPR.xsd) by name."""
    root = etree.parse(str(path), hardened_parser()).getroot()
    types = (_simple_type(t) for t in root.iterfind(f"{XS}simpleType"))
    return {t.name: t for t in types}


def _cell(text: str) -> str:
    """Table-safe text: a pipe would split the Markdown cell."""
    return text.replace("|", "\\|")


def _table(header: tuple[str, ...], rows: list[tuple[str, ...]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + " --- |" * len(header)]
    lines += ["| " + " | ".join(_cell(c) for c in row) + " |" for row in rows]
    return lines


def _tree(classes: dict[str, MessageClass], name: str, card: str, depth: int) -> list[str]:
    """The class tree as a nested list, each class with its cardinality under its parent."""
    own = " (own)" if classes[name].own else ""
    lines = [f"{'  ' * depth}- `{name}` {card}{own}".rstrip()]
    for child in classes[name].children:
        upper = "*" if child.max == "unbounded" else child.max
        lines += _tree(classes, child.name, f"{child.min}..{upper}", depth + 1)
    return lines


def _type_cell(attr: Attribute) -> str:
    return f"{attr.type} = `{attr.fixed}` (fixed)" if attr.fixed else attr.type


def _code_list_cell(attr: Attribute, types: dict[str, SimpleType]) -> str:
    """Name of the code list an attribute draws from and its OID, or `own` for our lists."""
    simple = types.get(attr.type)
    if simple is None or not simple.values:
        return attr.oid
    qualifier = attr.oid or ("own" if simple.own else "")
    return f"{attr.type} ({qualifier})" if qualifier else attr.type


def _class_section(cls: MessageClass, types: dict[str, SimpleType]) -> list[str]:
    own = " (our own class name)" if cls.own else ""
    lines = [f"### `{cls.name}`{own}", "", f"{cls.label}: {cls.doc}", ""]
    header = ("attribute", "type", "required", "code list (OID)", "meaning", "own name?")
    rows = [
        (
            f"`{a.name}`",
            _type_cell(a),
            "yes" if a.required else "no",
            _code_list_cell(a, types),
            f"{a.label}: {a.doc}",
            "own" if a.own else "",
        )
        for a in cls.attributes
    ]
    return lines + _table(header, rows) + [""]


def _used_types(classes: dict[str, MessageClass], types: dict[str, SimpleType]) -> list[str]:
    used = {a.type for c in classes.values() for a in c.attributes}
    return [name for name in types if name in used]


def _types_section(
    names: list[str], types: dict[str, SimpleType], title: str = "Common types (NPR.xsd)"
) -> list[str]:
    rows = [
        (f"`{n}`", types[n].base, types[n].facets, types[n].doc, "own" if types[n].own else "")
        for n in names
        if not types[n].values
    ]
    lines = [f"## {title}", ""]
    return lines + _table(("type", "base", "restriction", "meaning", "own?"), rows) + [""]


def _code_lists_section(names: list[str], types: dict[str, SimpleType]) -> list[str]:
    lines = ["## Code lists", ""]
    for name in (n for n in names if types[n].values):
        own = " (our own list)" if types[name].own else ""
        lines += [f"### `{name}`{own}", "", types[name].doc, ""]
        lines += _table(("code", "meaning"), [(f"`{v}`", m) for v, m in types[name].values])
        lines.append("")
    return lines


def _attribute_changes(old: MessageClass, new: MessageClass, version: str) -> list[str]:
    """Attributes added, removed or changed in a class (the fixed `versjon` value aside)."""
    before = {a.name: a for a in old.attributes}
    after = {a.name: a for a in new.attributes}
    lines = []
    for name in after.keys() - before.keys():
        attr = after[name]
        use = "required" if attr.required else "optional"
        lines.append(f"- `{new.name}/@{name}` added in {version} ({use}, {attr.type}): {attr.doc}")
    for name in before.keys() - after.keys():
        lines.append(f"- `{old.name}/@{name}` removed in {version}.")
    for name in before.keys() & after.keys():
        was, now = before[name], after[name]
        if (was.type, was.required) != (now.type, now.required):
            lines.append(f"- `{new.name}/@{name}` changed in {version}: {was.type} -> {now.type}.")
    return sorted(lines)


def _class_changes(
    old: dict[str, MessageClass], new: dict[str, MessageClass], version: str
) -> list[str]:
    lines = [f"- Class `{n}` added in {version}." for n in new.keys() - old.keys()]
    lines += [f"- Class `{n}` removed in {version}." for n in old.keys() - new.keys()]
    for name in old.keys() & new.keys():
        if old[name].children != new[name].children:
            lines.append(f"- The children of `{name}` changed in {version}.")
        lines += _attribute_changes(old[name], new[name], version)
    return sorted(lines)


def _differences_section(versions: list[MessageType]) -> list[str]:
    """What changed from each version of a kind to the next (none for a single version)."""
    if len(versions) < 2:
        return []
    lines = ["## Differences between versions", ""]
    for old, new in pairwise(versions):
        before, after = read_classes(old.schema_path), read_classes(new.schema_path)
        changes = _class_changes(before, after, new.version) or ["- No structural change."]
        lines += [
            f"### {old.version} -> {new.version}",
            "",
            f"- Namespace `{old.namespace}` -> `{new.namespace}`, and "
            f"`Melding/@versjon` fixed to `{new.version}`: a file of one version fails validation "
            "against the other, so each data year gets exactly its own version.",
            *changes,
            "",
        ]
    return lines


def _classes(
    classes: dict[str, MessageClass], types: dict[str, SimpleType], version: str
) -> list[str]:
    """The class tree, then every class with its attributes."""
    lines = ["## Class tree", "", *_tree(classes, "Melding", "1..1", 0), ""]
    lines += [f"## Classes ({version})", ""]
    for cls in classes.values():
        lines += _class_section(cls, types)
    return lines


def _mapping_section(mtype: MessageType) -> list[str]:
    """The lake tables of a type as its mapping.yaml declares them."""
    folder = mtype.folder.relative_to(mtype.folder.parents[2])
    reader, key = (
        ("npr_pipeline.intake.reader", "the record's own id within the unit's file")
        if mtype.route == "monthly"
        else (
            "npr_pipeline.intake.typed_reader",
            "the record's own id; with the unit it is the stable key events are applied by",
        )
    )
    lines = [
        "## Tables (mapping.yaml)",
        "",
        f"`{reader}` reads the file into these tables by `{folder}/mapping.yaml` alone, with "
        "the native pass's plan compiled from it (`npr_pipeline.intake.native`). Each row starts "
        "with "
        "the reader's context columns (e.g. `submission_id`, `unit`) and, where the table says "
        f"so, ends with `line`, the element's line in the file. Key: {key}.",
        "",
    ]
    for spec in mtype.tables:
        vault = " (identity vault, never the lake)" if spec.vault else ""
        once = " (once per file)" if spec.unique else ""
        parent = f", child of `{spec.parent}`" if spec.parent else ""
        key = ", ".join(f"`{k}`" for k in spec.key)
        lines += [
            f"### `{spec.name}`{vault}",
            "",
            f"One row per `{'/'.join(spec.element)}`{parent}; key {key}{once}.",
            "",
        ]
        rows = [(f"`{c}`", t, f"from `{spec.parent}`") for c, t in spec.inherit]
        rows += [
            (f"`{c}`", t, _source(spec.element[-1], source))
            for (c, t), source in zip(spec.columns, spec.sources, strict=True)
        ]
        if spec.line:
            rows.append(("`line`", "int", f"line of `{spec.element[-1]}` in the file"))
        lines += _table(("column", "type", "source"), rows) + [""]
    return lines


def _source(element: str, source: ColumnSource) -> str:
    """Where a column comes from, as the mapping says."""
    if source.position:
        return "position under the parent row, from 1"
    path = f"{element}/{source.element}" if source.element else element
    return f"`{path}/@{source.attribute}`"


def _reception(mtype: MessageType) -> str:
    """How the type is sent: its mapping's ``reception`` text, else the daily event message's."""
    if mtype.reception:
        return f'{mtype.reception} Its display name (`DN`) is "{mtype.display_name}".'
    return (
        f"A daily event message: MsgHead `MsgInfo/Type` `{mtype.message_type}` "
        f'(DN "{mtype.display_name}"; our own code, the real entries of code list 8279 for '
        "the daily messages are not public), `Melding/@meldingstype` `E`. Every record "
        "carries its key, `hendelsesstatus` (N, M, T, C) and `endretTidspunkt`; how intake "
        "applies them is in [daily.md](daily.md)."
    )


def _calendar_section(mtype: MessageType) -> list[str]:
    """The reception calendar of a type that has one (mapping.yaml ``calendar``)."""
    if mtype.calendar is None:
        return []
    cal = mtype.calendar
    rows = [
        (cal.validation_from.isoformat(), "files are received, validated and answered in full"),
        (f"to {cal.trial_until.isoformat()}", "trial period"),
        (
            cal.start_deadline.isoformat(),
            "deadline: every unit has started reporting; after it `npr status` names the obliged "
            "units that have sent nothing (`not_started`)",
        ),
        (cal.production_from.isoformat(), "ordinary reporting: accepted files reach production"),
    ]
    return [
        "## Calendar",
        "",
        *_table(("from", "what"), rows),
        "",
        "Before ordinary reporting a file gets the same answers (XPR_VAL, XPR_ERR) as later and "
        "never reaches production.",
        "",
    ]


def _index(kinds: dict[str, list[MessageType]]) -> str:
    """docs/messages/index.md: every message type with its page."""
    rows = [
        (
            f"`{kind}`",
            f"`{versions[-1].message_type}`",
            ", ".join(t.version for t in reversed(versions)),
            versions[-1].route,
            ", ".join(f"`{r}`" for r in versions[-1].records),
            f"[{kind}.md]({kind}.md)",
        )
        for kind, versions in kinds.items()
    ]
    lines = [
        "# Message types",
        "",
        "Generated by `python -m npr_pipeline.schema_docs`; do not edit by hand. Every type is a "
        "folder `npr_pipeline/messages/<kind>/<version>/` (`schema.xsd`, `mapping.yaml`); its "
        "route says what its records are: `monthly` (the cumulative ord and ide, read by "
        "`npr_pipeline.intake.reader`), `event` (the daily messages) or `report` (whole "
        "reports), the last two read by `npr_pipeline.intake.typed_reader`; both are one pass "
        "of the native validating reader (`npr_pipeline.intake.native`) that collects rows by "
        "the plan compiled from the mapping. The envelope is described in "
        "[envelope.md](envelope.md), the daily event messages in [daily.md](daily.md).",
        "",
        *_table(("kind", "MsgHead `MsgInfo/Type`", "versions", "route", "records", "page"), rows),
    ]
    return "\n".join(lines) + "\n"


def render_type(versions: list[MessageType]) -> str:
    """The Markdown page of a message type described as data (schema.xsd + mapping.yaml):
    the newest of ``versions`` (oldest first) in full, then the differences."""
    mtype = versions[-1]
    classes = read_classes(mtype.schema_path)
    # the type's own simple types (its code lists) beside the common ones of NPR.xsd
    own = read_types(mtype.schema_path)
    types = read_types(common_path(mtype.version)) | own
    names = _used_types(classes, types)
    folder = mtype.folder.relative_to(mtype.folder.parents[2])
    rows = [
        (t.version, str(t.data_year), f"`{t.namespace}`", f"`{t.folder.name}/`") for t in versions
    ]
    lines = [
        f"# The `{mtype.kind}` message ({mtype.message_type}): {mtype.title}",
        "",
        f"Generated by `python -m npr_pipeline.schema_docs` from `npr_pipeline/{folder}/"
        "schema.xsd`, its `mapping.yaml` and `NPR.xsd`; do not edit by hand (a test fails when "
        "this page and the folder differ).",
        "",
        mtype.intro,
        "",
        _reception(mtype),
        "",
        *_calendar_section(mtype),
        'Labels (attributeName) are Norwegian field names in NPR\'s style; "own" marks names '
        "we invented (the official ones are not public).",
        "",
        "## Versions",
        "",
        *_table(("version", "data year", "namespace", "folder"), rows),
        "",
        *_classes(classes, types, mtype.version),
    ]
    lines += _mapping_section(mtype)
    title = "Types (NPR.xsd and the type's own)" if own else "Common types (NPR.xsd)"
    lines += _types_section(names, types, title)
    lines += _code_lists_section(names, types)
    lines += _differences_section(versions)
    return "\n".join(lines).rstrip() + "\n"


def pages() -> dict[str, str]:
    """Every generated page by file name."""
    kinds: dict[str, list[MessageType]] = {}
    for mtype in all_types():  # sorted by kind and version
        kinds.setdefault(mtype.kind, []).append(mtype)
    found = {f"{kind}.md": render_type(versions) for kind, versions in kinds.items()}
    found["index.md"] = _index(kinds)
    return found


def main(argv: list[str]) -> None:
    """Regenerate the pages into OUT_DIR (default: docs/messages of this checkout)."""
    out = Path(argv[0]) if argv else DOCS_DIR
    out.mkdir(parents=True, exist_ok=True)
    for name, text in pages().items():
        (out / name).write_text(text, encoding="utf-8")


if __name__ == "__main__":
    main(sys.argv[1:])
