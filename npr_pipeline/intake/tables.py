"""The rows of one lake table for one submission, as a part file holds them (the tables'
columns and types, and the writing of part files, live in :mod:`npr_pipeline.store.lake`).

Codes stay strings (fagområde "010" keeps its zero), dates become dates and timestamps, by the
XSD lexical rules of their types.
"""

from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc

from npr_pipeline.intake.lexical import LexicalError, xs_date, xs_datetime, xs_integer
from npr_pipeline.store.lake import INT, KEYS, TABLES, TS, D, S, part_schema


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


def key_columns(keys: tuple[str, str, int], rows: int) -> list[pa.Array]:
    """The key columns ``submission_id``, ``unit`` and ``year`` of a submission, ``rows`` long:
    made once for its longest table, each of its tables takes their first rows (a view,
    :func:`part_table`). Three repeats per table were ~16,000 x 3 calls on the national April
    (docs/benchmarks.md, session 12)."""
    sid, unit, year = keys
    return [pa.repeat(pa.scalar(v, t), rows) for v, t in ((sid, S), (unit, S), (year, INT))]


def part_table(table: str, keys: list[pa.Array], raw: list[pa.Array]) -> pa.Table:
    """A submission's rows of ``table``, given as one raw column per table column (the native
    pass's buffers), converted to the lake's types (timestamps in Delta's microseconds), with
    the first rows of its key columns (:func:`key_columns`, at least as long) in front."""
    schema = part_schema(table)
    n = len(raw[0])
    arrays = [column.slice(0, n) for column in keys]
    arrays += [
        _stored(column, field.type, dtype, table, name)
        for column, field, (name, dtype) in zip(
            raw, list(schema)[len(KEYS) :], TABLES[table], strict=True
        )
    ]
    return pa.Table.from_arrays(arrays, schema=schema)


def _stored(
    column: pa.Array, stored: pa.DataType, dtype: pa.DataType, table: str, name: str
) -> pa.Array:
    """A raw column as the part file stores it: read as ``dtype`` (:func:`convert`), then
    ``stored`` (a timestamp's seconds in microseconds). A column already of its type is kept
    as it is: nearly every column is a string, and a cast to its own type was a call per
    column (~120,000 on the national April; docs/benchmarks.md, session 12).
    """
    if column.type == stored:
        return column
    read = convert(column, dtype, table, name)
    return read if read.type == stored else read.cast(stored)
