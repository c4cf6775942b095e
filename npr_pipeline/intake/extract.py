"""Rows of validated records by a function compiled once per message type from its mapping.

The mapping (``npr_pipeline/messages/<kind>/<version>/mapping.yaml``) says which element paths
are rows and where each column comes from. :class:`Extractor` turns it into one Python
function per record element: nested loops over the element paths the tables name, one tuple
per row built from ``elem.get`` calls with the attribute names as constants, the parent row's
values by index, a counter per numbered table and the first child that columns come from found
by a plain loop. It is the code one would write by hand for a type (as intake once did for ord
and ide), generated from the data: the hot path of intake (the monthly ord of a large trust has
millions of rows) runs at the speed of hand-written extraction without any per-type code.

Names from the mapping enter the generated source only as ``repr`` string constants; the
mapping loader has already checked the structure (:mod:`npr_pipeline.messages`). Values are
the strings the XML holds (absent attributes are None), the element's source line and the
row's position under its parent row are ints. The monthly sinks convert them to the table's
types in bulk (:mod:`npr_pipeline.intake.tables`); ``convert`` does it per value instead.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass, field
from types import CodeType

from lxml import etree

from npr_pipeline.messages import MessageType, TableSpec

Row = tuple[object, ...]
Add = Callable[[Row], None]
Convert = Callable[[str], object]


@dataclass
class _Node:
    """One element path below a record: the table whose rows it holds (if any), its children."""

    local: str
    table: int | None = None  # index into the type's tables
    children: list[_Node] = field(default_factory=list)

    def child(self, local: str) -> _Node:
        found = next((c for c in self.children if c.local == local), None)
        if found is None:
            found = _Node(local)
            self.children.append(found)
        return found


class Extractor:
    """The compiled extraction of one message type, writing rows through ``adders`` (one
    callable per table, e.g. a sink's ``add``).

    ``convert`` maps a column type to a function from the XML string (e.g. the XML Schema
    lexical rules of :mod:`npr_pipeline.intake.lexical`); without it values stay strings.
    ``source`` keeps the generated code, to read when in doubt.
    """

    def __init__(
        self,
        mtype: MessageType,
        adders: dict[str, Add],
        convert: dict[str, Convert] | None = None,
    ) -> None:
        self.source, code, records = _compiled(mtype, convert is not None)
        scope: dict[str, object] = {
            f"_add_{i}": adders[spec.name] for i, spec in enumerate(mtype.tables)
        }
        if convert is not None:
            scope |= {f"_conv_{kind}": function for kind, function in convert.items()}
        exec(code, scope)  # noqa: S102 - the code generated from our own mapping
        tag = f"{{{mtype.namespace}}}"
        self._by_tag: dict[str, Callable[[etree._Element], None]] = {
            tag + local: scope[f"_record_{number}"]  # type: ignore[misc]
            for number, local in enumerate(records)
        }

    def extract(self, record: etree._Element) -> None:
        """Rows of one validated record element (a child of ``Institusjon``)."""
        self._by_tag[record.tag](record)


@functools.cache
def _compiled(mtype: MessageType, converting: bool) -> tuple[str, CodeType, tuple[str, ...]]:
    """The generated source of a type, its code object and the record elements of its
    functions ``_record_<n>``: compiled once per process, run per file with its sinks."""
    roots: list[_Node] = []
    for index, spec in enumerate(mtype.tables):
        node = next((r for r in roots if r.local == spec.element[0]), None)
        if node is None:
            node = _Node(spec.element[0])
            roots.append(node)
        for local in spec.element[1:]:
            node = node.child(local)
        node.table = index
    code = _Code(mtype, converting)
    for number, root in enumerate(roots):
        code.function(f"_record_{number}", root)
    source = "\n".join(code.lines) + "\n"
    compiled = compile(source, f"<extract {mtype.kind} {mtype.version}>", "exec")
    return source, compiled, tuple(root.local for root in roots)


class _Code:
    """The generated source: one function per record element, one loop level per path step."""

    def __init__(self, mtype: MessageType, converting: bool) -> None:
        self.specs = mtype.tables
        self.index = {spec.name: i for i, spec in enumerate(mtype.tables)}
        self.ns = f"{{{mtype.namespace}}}"
        self.converting = converting
        self.lines: list[str] = []
        # tables numbering their rows, by the index of the parent table that resets the count
        self.numbered: dict[int, list[int]] = {}
        for i, spec in enumerate(mtype.tables):
            if spec.parent is not None and any(s.position for s in spec.sources):
                self.numbered.setdefault(self.index[spec.parent], []).append(i)

    def function(self, name: str, root: _Node) -> None:
        self.lines.append(f"def {name}(e0):")
        self._node(root, 0, 1)

    def _node(self, node: _Node, depth: int, indent: int) -> None:
        pad = "    " * indent
        elem = f"e{depth}"
        if node.table is not None:
            self._row(node.table, elem, pad)
        if not node.children:
            if node.table is None:
                self.lines.append(f"{pad}pass")
            return
        child = f"e{depth + 1}"
        self.lines += [f"{pad}for {child} in {elem}:", f"{pad}    tag = {child}.tag"]
        for number, sub in enumerate(node.children):
            keyword = "if" if number == 0 else "elif"
            self.lines.append(f"{pad}    {keyword} tag == {self.ns + sub.local!r}:")
            self._node(sub, depth + 1, indent + 2)

    def _row(self, index: int, elem: str, pad: str) -> None:
        """Build row ``r<index>`` of a table from ``elem`` and add it."""
        spec = self.specs[index]
        values = [f"r{self.index[spec.parent]}[{i}]" for i in self._inherited(spec)]
        children: dict[str, str] = {}
        get = f"{elem}.get"
        if sum(1 for s in spec.sources if s.element is None and not s.position) > 2:
            get = "get"  # bound once: the method lookup is a measurable part of a wide row
            self.lines.append(f"{pad}get = {elem}.get")
        for source, (_, kind) in zip(spec.sources, spec.columns, strict=True):
            if source.position:
                self.lines.append(f"{pad}n{index} += 1")
                values.append(f"n{index}")
                continue
            if source.element is None:
                value = f"{get}({source.attribute!r})"
            else:
                holder = children.get(source.element) or self._first_child(
                    children, source.element, elem, pad
                )
                value = f"({holder}.get({source.attribute!r}) if {holder} is not None else None)"
            if self.converting:
                value = f"(None if (v := {value}) is None else _conv_{kind}(v))"
            values.append(value)
        if spec.line:
            values.append(f"{elem}.sourceline")
        self.lines += [f"{pad}r{index} = ({', '.join(values)},)", f"{pad}_add_{index}(r{index})"]
        self.lines += [f"{pad}n{numbered} = 0" for numbered in self.numbered.get(index, ())]

    def _first_child(self, children: dict[str, str], local: str, elem: str, pad: str) -> str:
        """Emit a loop binding the first child ``local`` of ``elem`` (or None); its name."""
        name = children[local] = f"c{len(children)}"
        self.lines += [
            f"{pad}for {name} in {elem}:",
            f"{pad}    if {name}.tag == {self.ns + local!r}:",
            f"{pad}        break",
            f"{pad}else:",
            f"{pad}    {name} = None",
        ]
        return name

    def _inherited(self, spec: TableSpec) -> list[int]:
        """Positions in the parent's row of the inherited columns."""
        if spec.parent is None:
            return []
        names = [name for name, _ in self.specs[self.index[spec.parent]].all_columns()]
        return [names.index(name) for name, _ in spec.inherit]
