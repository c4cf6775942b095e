"""A bounded-memory Parquet sink per lake table (the tables' columns and types live in
:mod:`npr_pipeline.store.lake`).

Codes stay strings (fagområde "010" keeps its zero), dates become dates and timestamps. Rows
are buffered as Python lists per column and flushed as a row group every ``FLUSH_ROWS`` rows,
so memory does not grow with the file.
"""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from npr_pipeline.intake.lexical import LexicalError, xs_date, xs_datetime, xs_integer
from npr_pipeline.store.lake import INT, KEYS, TABLES, TS, D, S, part_schema

FLUSH_ROWS = 100_000


def _raw_type(name: str) -> pa.DataType:
    """How the reader hands a column over: source lines and sequence numbers as ints, every
    attribute as the string the XML holds."""
    return INT if name in ("line", "seq") else S


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


def _row_type(table: str) -> pa.StructType:
    """One reader tuple as an Arrow struct, so a whole buffer converts in one C++ call."""
    return pa.struct([pa.field(n, _raw_type(n)) for n, _ in TABLES[table]])


class Sink:
    """Rows of one table for one submission, written to ``path`` in row groups.

    Rows are kept as tuples and turned into columns only at flush, by one conversion of the
    buffer to an Arrow struct array (appending a tuple costs a fraction of appending to one
    list per column, and the conversion never touches a value from Python). Dates, timestamps
    and numbers are then converted column by column (:func:`convert`): the schema has already
    refused empty or malformed ones.
    """

    def __init__(self, table: str, path: Path, keys: tuple[str, str, int]) -> None:
        self.table, self.path, self.keys = table, path, keys
        self.columns = TABLES[table]
        self.row_type = _row_type(table)
        self.pending: list[tuple] = []
        self.add = self.pending.append
        self.rows = 0
        self.writer: pq.ParquetWriter | None = None

    def add_row(self, *values: object) -> None:
        """One row, values in the table's column order (flushes when the buffer is full)."""
        self.add(values)
        if len(self.pending) >= FLUSH_ROWS:
            self.flush()

    def flush(self) -> None:
        n = len(self.pending)
        if n == 0 and self.writer is not None:
            return
        rows = pa.array(self.pending, type=self.row_type)
        self.pending.clear()  # a value that cannot be stored must not be tried again at close
        self._write(rows.flatten(), n)

    def write_columns(self, columns: list[pa.Array]) -> None:
        """Rows given as one raw column per table column (the native pass's buffers), written
        in row groups of ``FLUSH_ROWS`` like the tuples of :meth:`add`."""
        n = len(columns[0])
        for start in range(0, max(n, 1), FLUSH_ROWS):
            size = min(FLUSH_ROWS, n - start)
            self._write([column.slice(start, size) for column in columns], size)

    def _write(self, raw: list[pa.Array], n: int) -> None:
        """One row group of ``n`` rows from the raw columns, converted to the lake's types."""
        schema = part_schema(self.table)  # the Delta table's types (timestamps in microseconds)
        sid, unit, year = self.keys
        arrays = [pa.repeat(pa.scalar(v, t), n) for v, t in ((sid, S), (unit, S), (year, INT))]
        arrays += [
            convert(column, dtype, self.table, name).cast(field.type)
            for column, field, (name, dtype) in zip(
                raw, list(schema)[len(KEYS) :], self.columns, strict=True
            )
        ]
        if self.writer is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.writer = pq.ParquetWriter(self.path, schema, compression="zstd")
        self.writer.write_table(pa.Table.from_arrays(arrays, schema=schema))
        self.rows += n

    def full(self) -> bool:
        """Whether the buffer should be flushed (checked once per patient, not per row)."""
        return len(self.pending) >= FLUSH_ROWS

    def close(self) -> None:
        try:
            self.flush()
        finally:
            if self.writer is not None:
                self.writer.close()
