"""Intake batches of the daily route: the unit of commit and of history.

Every event an intake batch appends to the Delta event tables (:mod:`.events`) carries the
batch's number. A batch is visible to readers only once its row in ``state.duckdb``'s
``batches`` table is committed, and that happens in the one DuckDB transaction that commits the
batch's ledger rows and lopenr claims (``ledger.write_records(..., batch=...)``). So a run killed
between the Delta append and the ledger commit leaves rows under a batch number that is never
marked committed, and no reader ever sees them; the rerun takes a new number.

"The state as known at batch N" is the fold over the events of the committed batches up to N:
it survives Delta compaction and vacuum, because history lives in the data, not in table
versions (docs/decisions/storage.md).
"""

from __future__ import annotations

import duckdb
import pyarrow as pa

from npr_pipeline.home import Home
from npr_pipeline.store import ledger, state

# ``ledger._prepare`` creates the batches table with the state's other tables (and imports an
# old JSON ledger first), so a batch is never begun in a state file without its ledger.
_prepare = ledger._prepare
_COMMITTED = "SELECT batch FROM batches WHERE committed IS NOT NULL AND batch <= ? ORDER BY batch"


def begin_batch(home: Home) -> int:
    """Take the next batch number: one above every number ever taken, committed or not, so a
    killed batch's invisible rows never share a number with a later batch's."""
    return begin_batch_reading(home)[0]


def begin_batch_reading(home: Home) -> tuple[int, pa.Table]:
    """:func:`begin_batch`, and the committed batches (:func:`committed_batches`) read in the
    same transaction: intake needs both per batch, and each opening of the file costs ~25 ms."""
    with state.transaction(home, _prepare) as con:
        committed = committed_in(con)
        number = take_batch(con)
    return number, committed


def take_batch(con: duckdb.DuckDBPyConnection) -> int:
    """:func:`begin_batch` inside the caller's state transaction (which commits it), for a
    caller with more to write there before its batch's commit."""
    number = con.execute("SELECT coalesce(max(batch), 0) + 1 FROM batches").fetchall()[0][0]
    con.execute("INSERT INTO batches (batch, started) VALUES (?, now())", [number])
    return int(number)


def committed_batch(home: Home) -> int:
    """The highest committed batch number (0 when none): the high-water mark a snapshot names."""
    with state.reader(home, _prepare) as con:
        return int(
            con.execute(
                "SELECT coalesce(max(batch), 0) FROM batches WHERE committed IS NOT NULL"
            ).fetchall()[0][0]
        )


def committed_batches(home: Home, as_of_batch: int | None = None) -> pa.Table:
    """The committed batch numbers up to ``as_of_batch`` (all when None), one column ``batch``:
    what a reader joins the event tables with, so uncommitted numbers are never read."""
    with state.reader(home, _prepare) as con:
        return committed_in(con, as_of_batch)


def committed_in(con: duckdb.DuckDBPyConnection, as_of_batch: int | None = None) -> pa.Table:
    """:func:`committed_batches` through an opening the caller holds (with other reads of the
    state in it: each opening of the file costs ~20 ms)."""
    limit = as_of_batch if as_of_batch is not None else 2**62
    return con.sql(_COMMITTED, params=[limit]).to_arrow_table()
