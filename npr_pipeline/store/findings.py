"""Findings on a batch of daily files' events, as each file saw the events known before it.

Intake writes them to each file's XPR_ERR; they never reject a file and never change the state
(the fold, :mod:`.consolidated`, ignores the same events by the same rules). A file's events
are judged against the committed events of their keys plus the events of the files before it
in the batch and of the file itself (``arrival``), ordered as the fold orders them:

* ``duplicate_new``: an N while the last N or C before it is an N (the record exists);
* ``after_cancel``: an M, T or C while the last N or C before it is a C after an N;
* ``unknown_key``: an M, T or C with no N before it;
* none for an event identical (status, time, attributes, children) to another known one.

A finding can later stop being true (an older N arriving after an M makes the M apply): the
finding tells the unit what its file met on arrival, the state follows the rules.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import duckdb
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds

from npr_pipeline import duck
from npr_pipeline.home import Home
from npr_pipeline.store.batches import committed_batches
from npr_pipeline.store.consolidated import STATUS, TIME, Family, _cols, _eq, _q, families, link
from npr_pipeline.store.events import events_dataset

ARRIVAL = "arrival"  # the file's place in its batch, from 1; committed events are 0
PATIENT = "pasientNr"


@dataclass(frozen=True)
class EventFinding:
    """One event of one file that changed nothing, and why."""

    submission_id: str
    table: str  # the record's event table, e.g. daily_contacts
    key: str  # the record's own id (several key columns joined by "/")
    status: str
    changed: datetime
    patient: str | None
    line: int
    code: str


def event_findings(
    home: Home, batch: dict[str, pa.Table], committed: pa.Table | None = None
) -> list[EventFinding]:
    """The findings of a batch's events. ``batch`` holds each event table's rows of the batch's
    files in the stored schema (:func:`npr_pipeline.store.events.event_schema`) plus
    ``arrival``; tables without rows may be left out. ``committed``: the committed batches
    when the caller has read them already (default: read now)."""
    found: list[EventFinding] = []
    with duck.connect() as con:
        committed = committed if committed is not None else committed_batches(home)
        con.register("_committed", committed)
        for family in families():
            if family.root.name in batch:
                found += _family_findings(con, home, family, batch)
    return sorted(found, key=lambda f: (f.submission_id, f.line, f.code))


def _family_findings(
    con: duckdb.DuckDBPyConnection, home: Home, family: Family, batch: dict[str, pa.Table]
) -> list[EventFinding]:
    root, key = family.root, family.root.key
    ident = ("unit", "year", *key)
    con.register("_new_keys", batch[root.name].select(list(ident)))
    sources = {}
    for spec in (family.root, *family.children):
        new, old = f"_new_{spec.name}", f"_old_{spec.name}"
        rows = batch.get(spec.name)
        con.register(new, rows if rows is not None else _empty(home, spec.name))
        con.register(old, _touched(events_dataset(home, spec.name), batch[root.name], key))
        sources[spec.name] = (
            f"SELECT year AS scope, * FROM {new} UNION ALL BY NAME "
            f"SELECT e.year AS scope, 0 AS {ARRIVAL}, e.* FROM {old} e "
            f"SEMI JOIN (SELECT DISTINCT {_cols(ident)} FROM _new_keys) n "
            f"ON {_eq(ident, 'e', 'n')} WHERE e.batch IN (SELECT batch FROM _committed)"
        )
    out = "_findings_"
    link(con, family, sources, out)
    order = f"row(x.{_q(TIME)}, x.lopenr, x.line, x.submission_id)"
    before = f"{order} < row(e.{_q(TIME)}, e.lopenr, e.line, e.submission_id)"
    patient = f"e.{_q(PATIENT)}" if PATIENT in dict(root.all_columns()) else "NULL"
    rows = con.execute(
        f"""WITH j AS (
            SELECT e.eid, e.submission_id, concat_ws('/', {_cols(key, "e")}) AS key,
                e.{_q(STATUS)} AS status, e.{_q(TIME)} AS changed, {patient} AS patient, e.line,
                coalesce(bool_or(x.{_q(STATUS)} = e.{_q(STATUS)} AND x.{_q(TIME)} = e.{_q(TIME)}
                    AND x.content = e.content), false) AS dup,
                arg_max(x.{_q(STATUS)}, {order})
                    FILTER (WHERE {before} AND x.{_q(STATUS)} IN ('N', 'C')) AS prev_nc,
                coalesce(bool_or({before} AND x.{_q(STATUS)} = 'N'), false) AS prev_n
            FROM {out}_h e LEFT JOIN {out}_h x ON {_eq(("scope", *ident), "x", "e")}
                AND x.eid <> e.eid AND x.{ARRIVAL} <= e.{ARRIVAL}
            WHERE e.{ARRIVAL} > 0
            GROUP BY ALL
        )
        SELECT submission_id, key, status, changed, patient, line,
            CASE WHEN status = 'N' THEN
                    CASE WHEN coalesce(prev_nc, '') = 'N' THEN 'duplicate_new' END
                WHEN coalesce(prev_nc = 'N', false) THEN NULL
                WHEN prev_n THEN 'after_cancel'
                ELSE 'unknown_key' END AS code
        FROM j WHERE NOT dup"""
    ).fetchall()
    return [EventFinding(r[0], root.name, *r[1:]) for r in rows if r[-1] is not None]


def _touched(events: ds.Dataset, new: pa.Table, key: tuple[str, ...]) -> pa.Table:
    """The stored events of the batch's keys, at most: the scan is filtered by year (partition
    pruning), unit and the key's first column (row groups pruned by their statistics where the
    data is clustered, rows filtered in Arrow otherwise), so DuckDB joins the touched keys'
    history, not the whole table's, which grows by every day of the year. The SQL still joins
    on the whole key: the filter only has to keep every row it needs."""
    wanted = ds.field("year").isin(pc.unique(new.column("year")).cast(pa.int32()))
    for name in ("unit", key[0]):
        wanted &= ds.field(name).isin(pc.unique(new.column(name)))
    return events.to_table(filter=wanted)


def _empty(home: Home, table: str) -> pa.Table:
    """No rows of a child table in this batch: its stored schema with ``arrival``."""
    empty = events_dataset(home, table).schema.empty_table()
    return empty.append_column(ARRIVAL, pa.array([], pa.int64()))
