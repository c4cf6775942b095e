"""The Parquet part file of one lake table for one submission (the tables' columns and types
live in :mod:`npr_pipeline.store.lake`).

Codes stay strings (fagområde "010" keeps its zero), dates become dates and timestamps, by the
XSD lexical rules of their types.
"""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from npr_pipeline.intake.lexical import LexicalError, xs_date, xs_datetime, xs_integer
from npr_pipeline.store.lake import INT, KEYS, TABLES, TS, D, S, part_schema

FLUSH_ROWS = 100_000
# The Parquet options of a part file: see :func:`write_part` for why each.
LEAN: dict[str, object] = {
    "compression": "zstd",
    "use_dictionary": False,
    "write_statistics": [name for name, _ in KEYS],
    "store_schema": False,
}


class ValueRejected(ValueError):
    """A schema-valid value that cannot be stored; names the table, column and value."""

    def __init__(self, table: str, column: str, problem: LexicalError) -> None:
        super().__init__(f"{table}.{column}: {problem}")
        self.table, self.column = table, column


_READERS = {INT: xs_integer, D: xs_date, TS: xs_datetime}


def convert(column: pa.Array, dtype: pa.DataType, table: str, name: str) -> pa.Array:
    """A column of XML strings as ``dtype``, by the XSD lexical rules of the value's type.

    Arrow's cast reads the plain spellings (nearly every value) in C++; a column holding any
    other schema-valid spelling (a sign, whitespace, a zone, fractional seconds, 24:00:00) is
    read value by value in Python instead, so no spelling the schema allows can fail here.
    """
    if column.type == dtype:
        return column
    try:
        return pc.cast(column, dtype)
    except pa.ArrowInvalid:
        read = _READERS[dtype]
        try:
            values = [None if v is None else read(v) for v in column.to_pylist()]
        except LexicalError as problem:
            raise ValueRejected(table, name, problem) from None
        return pa.array(values, type=dtype)


def write_part(table: str, path: Path, keys: tuple[str, str, int], raw: list[pa.Array]) -> int:
    """A submission's rows of ``table``, given as one raw column per table column (the native
    pass's buffers), converted to the lake's types and written to ``path`` (its folder made by
    the caller, once per file) in one call, in row groups of ``FLUSH_ROWS``; returns the number
    of rows.

    One ``write_table`` per table and file: the native pass hands every column over whole, so
    a writer kept open for a loop of row groups only added its fixed costs (seven tables per
    ord file, ~4,000 files a national month, median 16 kB). On such small files the write's
    fixed costs are the write, so it is kept lean (:data:`LEAN`): no Arrow schema in the
    footer (the Parquet types read back as the same Arrow types), statistics only on the key
    columns (a reader prunes by submission, unit or year; no reader prunes by another column),
    no dictionary pages, and a native file handle instead of a path pyarrow resolves to a
    filesystem three times. 5.1 -> 3.7 ms of CPU per small ord file (docs/benchmarks.md,
    "Session 9").
    """
    schema = part_schema(table)  # the Delta table's types (timestamps in microseconds)
    n = len(raw[0])
    sid, unit, year = keys
    arrays = [pa.repeat(pa.scalar(v, t), n) for v, t in ((sid, S), (unit, S), (year, INT))]
    arrays += [
        convert(column, dtype, table, name).cast(field.type)
        for column, field, (name, dtype) in zip(
            raw, list(schema)[len(KEYS) :], TABLES[table], strict=True
        )
    ]
    frame = pa.Table.from_arrays(arrays, schema=schema)
    with pa.OSFile(str(path), "wb") as sink:
        pq.write_table(frame, sink, row_group_size=FLUSH_ROWS, **LEAN)
    return n
