"""Every reader's native pass (monthly, daily and report files alike): libxml2's SAX2 parser
with the streaming XSD validator plugged in and the mapping's columns collected as it goes, in
one pass without a tree.

The C part (``_native.c``) knows no message type: :func:`plan` compiles a type's mapping (its
tables, element paths and column sources, :mod:`npr_pipeline.messages`) into the small table
the C code walks. What comes back per table is the buffers of Arrow arrays, one per column
(strings as the XML holds them, source lines and positions as int32), in a table's row
layout: inherited columns, own columns, the line.
Why a native extension of our own: docs/decisions/extraction.md.
"""

from __future__ import annotations

import functools
from typing import Any, Protocol

import pyarrow as pa

from npr_pipeline.intake.native._native import Schema, parse
from npr_pipeline.intake.native._native import probe as _probe
from npr_pipeline.messages import MessageType, TableSpec
from npr_pipeline.schemas import MSGHEAD_NS

MAX_PARSE_ERRORS = 20  # as _native.c keeps: the first one classifies the file
CONTAINER = "Institusjon"  # the element whose children are a message's records (every type's)
ATTR, CHILD, INHERIT, POSITION, LINE = range(5)  # the slot kinds of _native.c


class Handler(Protocol):
    """What the pass tells Python: elements outside the Melding (to build the header) and the
    Melding's own children. ``start`` returns ``(Schema, plan)`` for the Melding to validate
    and extract, None for every other element; any exception stops the parse."""

    def start(self, tag: str, attrs: dict[str, str], line: int) -> tuple[Schema, tuple] | None: ...
    def data(self, text: str) -> None: ...
    def end(self, tag: str) -> None: ...
    def child(self, local: str, attrs: dict[str, str], line: int) -> None: ...


@functools.cache
def schema(mtype: MessageType) -> Schema:
    """The type's XSD compiled by libxml2, once per process."""
    return Schema(str(mtype.schema_path))


@functools.cache
def plan(mtype: MessageType) -> tuple:
    """The mapping as the C code walks it: ``(namespace, container, main record node, nodes,
    tables)``; nodes ``(local, parent node, table)`` with parents first, tables ``(parent
    table, slots)`` with parents first, slots ``(kind, attribute, child element, inherited
    slot)``."""
    nodes: list[tuple[str, int, int]] = []

    def node(path: tuple[str, ...]) -> int:
        parent = node(path[:-1]) if len(path) > 1 else -1
        for number, (local, up, _) in enumerate(nodes):
            if local == path[-1] and up == parent:
                return number
        nodes.append((path[-1], parent, -1))
        return len(nodes) - 1

    index = {spec.name: i for i, spec in enumerate(mtype.tables)}
    tables: list[tuple[int, list[tuple[int, str | None, str | None, int]]]] = []
    for number, spec in enumerate(mtype.tables):
        at = node(spec.element)
        local, parent, _ = nodes[at]
        nodes[at] = (local, parent, number)
        up = index[spec.parent] if spec.parent is not None else -1
        if up >= number:
            raise ValueError(f"{mtype.kind} {mtype.version}: {spec.name} before its parent")
        tables.append((up, _slots(spec, mtype.tables[up] if up >= 0 else None)))
    main = next(i for i, (local, up, _) in enumerate(nodes) if up == -1 and local == mtype.record)
    return (mtype.namespace, CONTAINER, main, nodes, tables)


def _slots(
    spec: TableSpec, parent: TableSpec | None
) -> list[tuple[int, str | None, str | None, int]]:
    """A table's columns in its row layout: inherited, own, then the line."""
    slots: list[tuple[int, str | None, str | None, int]] = []
    if parent is not None:
        names = [name for name, _ in parent.all_columns()]
        slots += [(INHERIT, None, None, names.index(name)) for name, _ in spec.inherit]
    for source in spec.sources:
        if source.position:
            slots.append((POSITION, None, None, -1))
        elif source.element is None:
            slots.append((ATTR, source.attribute, None, -1))
        else:
            slots.append((CHILD, source.attribute, source.element, -1))
    if spec.line:
        slots.append((LINE, None, None, -1))
    return slots


def arrays(columns: list[tuple[Any, ...]]) -> list[pa.Array]:
    """One table's columns as Arrow arrays over the buffers the C code filled (no copy)."""
    found = []
    for column in columns:
        if column[0] == "i":
            _, rows, data = column
            found.append(pa.Array.from_buffers(pa.int32(), rows, [None, pa.py_buffer(data)]))
        else:
            _, rows, nulls, validity, offsets, data = column
            buffers = [pa.py_buffer(validity) if nulls else None, pa.py_buffer(offsets)]
            found.append(
                pa.Array.from_buffers(pa.string(), rows, [*buffers, pa.py_buffer(data)], nulls)
            )
    return found


def read(path: str, handler: Handler, max_errors: int) -> dict[str, Any]:
    """One pass over ``path``: ``schema_errors`` [(message, line, element)], ``parse_errors``
    [(domain, code, level, message, line)], ``columns`` per table (for :func:`arrays`),
    ``records`` (main records read), ``well_formed``, ``doctype``, ``melding_closed``."""
    return parse(path, handler, max_errors)


def probe(path: str) -> str | None:
    """MsgInfo's Type ``V`` of an ordinary file ("" when Type or V is absent), read by a SAX2
    parse that stops where the first MsgInfo ends; None whenever anything before that was
    unusual (a diagnostic of libxml2, a DOCTYPE, a root other than MsgHead, a nested MsgInfo,
    no MsgInfo): the caller then reads the file the careful way. What the answer proves:
    :func:`npr_pipeline.intake.daily.untyped_by_probe`."""
    return _probe(path, MSGHEAD_NS)
