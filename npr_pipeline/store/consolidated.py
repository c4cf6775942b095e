"""The consolidated state of the daily route: the event tables folded into the monthly shapes.

The fold is a pure function of the set of committed events up to a batch, in DuckDB SQL
(window functions, no Python per row), so it is order-independent and rebuilds the state as
known at any batch. The rules (docs/messages/daily.md, docs/decisions/daily-route.md), per key
(unit + the record's own id), events ordered by (``endretTidspunkt``, ``lopenr``, ``line``):

* an identical event seen twice (same key, status, time, attributes and children) counts once:
  the copy with the lowest (``lopenr``, ``line``) is kept;
* the record is live after an event when the last N or C up to it is an N. So an N is applied
  when the record is not live (it creates, or re-creates after a C) and ignored otherwise
  (``duplicate_new``); an M, T or C is applied only to a live record, otherwise it is ignored
  (``after_cancel`` when an N came before it, ``unknown_key`` when none did);
* the current record is the last applied N or M (its attributes and children, whole) with the
  applied T's after it: a T's non-empty attributes overwrite, its children replace those of the
  same child key or are added; a C leaves nothing until a newer N.

Each state row's ``submission_id`` is the daily file that set it (the last event applied to a
record; for a child row, the event that carried it), ``line`` that event's line.

Children are linked to their record's event by file, key, status, time and line: the child
rows of a record event are those of the same file carrying its key, status and time whose line
is at or after the record's, nearest first (the record and its children share their inherited
columns, so only two identical heads on one line of one file could be confused).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import duckdb
import pyarrow as pa

from npr_pipeline.home import Home
from npr_pipeline.messages import TableSpec
from npr_pipeline.store.batches import committed_batches
from npr_pipeline.store.events import events_dataset, table_specs
from npr_pipeline.store.lake import KEYS, TABLES, schema_of

STATUS, TIME = "hendelsesstatus", "endretTidspunkt"
EVENT_COLUMNS = ("batch", "submission_id", "unit", "year", "lopenr", "line")
CLOSINGS, TOTALS = "daily_closings", "daily_control_totals"
POSTARTS = ("1", "2", "3")  # contacts, referral periods, identities (code list postart)
_SQL_TYPES = {
    pa.string(): "VARCHAR",
    pa.int32(): "INTEGER",
    pa.int64(): "BIGINT",
    pa.date32(): "DATE",
    pa.timestamp("s"): "TIMESTAMP_S",
}


@dataclass(frozen=True)
class Family:
    """A record's event table and its children's (one level, as the mappings have)."""

    root: TableSpec
    children: tuple[TableSpec, ...]


def families() -> tuple[Family, ...]:
    """Every record event table with its children, from the message type folders."""
    specs = table_specs()
    for spec in specs.values():
        if spec.parent is not None and specs[spec.parent].parent is not None:
            raise ValueError(f"{spec.name}: the fold handles one level of children")
    return tuple(
        Family(root, tuple(s for s in specs.values() if s.parent == root.name))
        for root in specs.values()
        if root.parent is None
    )


def _q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _cols(names: Iterable[str], alias: str = "") -> str:
    dot = f"{alias}." if alias else ""
    return ", ".join(f"{dot}{_q(n)}" for n in names)


def _eq(names: Iterable[str], left: str, right: str) -> str:
    return " AND ".join(f"{left}.{_q(n)} = {right}.{_q(n)}" for n in names)


# -- the fold ---------------------------------------------------------------------------------


def classify_sql(events: str, ident: tuple[str, ...]) -> str:
    """SQL classifying each (deduplicated) event of ``events`` per identity ``ident``: ``ord``
    (its place among its key's events) and ``applied`` (whether it changes the record)."""
    part = _cols(ident)
    return f"""
        WITH o AS (
            SELECT *, row_number() OVER (PARTITION BY {part}
                ORDER BY {_q(TIME)}, lopenr, line, submission_id) AS ord
            FROM {events}
        ), p AS (
            SELECT *,
                last_value(CASE WHEN {_q(STATUS)} IN ('N', 'C') THEN {_q(STATUS)} END
                    IGNORE NULLS) OVER w AS prev_nc,
            FROM o
            WINDOW w AS (PARTITION BY {part} ORDER BY ord
                ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING)
        )
        SELECT * EXCLUDE (prev_nc),
            CASE WHEN {_q(STATUS)} = 'N' THEN coalesce(prev_nc, '') <> 'N'
                ELSE coalesce(prev_nc = 'N', false) END AS applied
        FROM p"""


def content_hashes_sql(family: Family, events: str, children: dict[str, str]) -> str:
    """SQL adding ``content`` to each record event of ``events``: a hash of its attributes and
    of every child it carries (``children``: child table name -> relation with ``eid``), so
    identical events in two files are recognised as one."""
    own = [n for n, _ in family.root.all_columns() if n not in (*family.root.key, STATUS, TIME)]
    parts, joins = [f"hash({_cols(own, 'e')})"], []
    for i, child in enumerate(family.children):
        cols = [n for n, _ in child.columns]
        joins.append(
            f"LEFT JOIN (SELECT eid, hash(list_sort(list(hash({_cols(cols)})))) AS h "
            f"FROM {children[child.name]} GROUP BY eid) c{i} ON c{i}.eid = e.eid"
        )
        parts.append(f"coalesce(c{i}.h, 0)")
    return f"SELECT e.*, hash({', '.join(parts)}) AS content FROM {events} e {' '.join(joins)}"


def link(
    con: duckdb.DuckDBPyConnection, family: Family, sources: dict[str, str], out: str
) -> dict[str, str]:
    """Number the record events (``{out}_e``, column ``eid``), link each child row to its record
    event (``{out}_c_<child>``) and hash each event's content (``{out}_h``, column ``content``).
    Returns the child tables by name."""
    root, key = family.root, family.root.key
    con.execute(
        f"CREATE OR REPLACE TEMP TABLE {out}_e AS SELECT row_number() OVER "
        f"(ORDER BY scope, submission_id, line) AS eid, * FROM ({sources[root.name]})"
    )
    children = {}
    for child in family.children:
        link = ("scope", "submission_id", "unit", *key, STATUS, TIME)
        children[child.name] = f"{out}_c_{child.name}"
        con.execute(
            f"CREATE OR REPLACE TEMP TABLE {children[child.name]} AS "
            f"SELECT p.eid, c.* EXCLUDE (cid) FROM (SELECT row_number() OVER () AS cid, * "
            f"FROM ({sources[child.name]})) c JOIN {out}_e p "
            f"ON {_eq(link, 'c', 'p')} AND p.line <= c.line "
            f"QUALIFY row_number() OVER (PARTITION BY c.cid ORDER BY p.line DESC) = 1"
        )
    hashed = content_hashes_sql(family, f"{out}_e", children)
    con.execute(f"CREATE OR REPLACE TEMP TABLE {out}_h AS {hashed}")
    return children


def fold(con: duckdb.DuckDBPyConnection, family: Family, sources: dict[str, str], out: str) -> None:
    """Fold one family's events into temp tables ``{out}{table}`` (daily columns, plus the event
    columns of the event that set each row). ``sources`` give each table's events as SQL with a
    ``scope`` column: the fold runs per scope (one state per scope, e.g. per closing)."""
    root, key = family.root, family.root.key
    ident = ("scope", "unit", *key)
    children = link(con, family, sources, out)
    dedup = (
        f"SELECT * FROM {out}_h QUALIFY row_number() OVER (PARTITION BY "
        f"{_cols((*ident, STATUS, TIME, 'content'))} ORDER BY lopenr, line, submission_id) = 1"
    )
    con.execute(f"CREATE OR REPLACE TEMP TABLE {out}_k AS {classify_sql(f'({dedup})', ident)}")
    # the events that make up each live record: from its last applied N or M on
    con.execute(
        f"""CREATE OR REPLACE TEMP TABLE {out}_a AS
        WITH base AS (
            SELECT {_cols(ident)},
                max(ord) FILTER (WHERE applied AND {_q(STATUS)} IN ('N', 'M')) AS base_ord,
                arg_max({_q(STATUS)}, ord) FILTER (WHERE {_q(STATUS)} IN ('N', 'C')) AS last_nc
            FROM {out}_k GROUP BY ALL
        )
        SELECT k.* FROM {out}_k k JOIN base b ON {_eq(ident, "k", "b")}
        WHERE b.last_nc = 'N' AND k.applied AND k.ord >= b.base_ord"""
    )
    values = [n for n, _ in root.all_columns() if n not in key] + ["line", "batch", "lopenr"]
    picked = ", ".join(
        f"arg_max({_q(n)}, ord) FILTER (WHERE {_q(n)} IS NOT NULL) AS {_q(n)}" for n in values
    )
    con.execute(
        f"CREATE OR REPLACE TEMP TABLE {out}{root.name} AS SELECT {_cols(ident)}, "
        f"any_value(year) AS year, arg_max(submission_id, ord) AS submission_id, {picked} "
        f"FROM {out}_a GROUP BY {_cols(ident)}"
    )
    for child in family.children:
        # inherited columns (the patient) from the record as it is now, not as the event had it
        inherited = [n for n, _ in child.inherit if n not in key]
        child_key = ("scope", "unit", *child.key)
        con.execute(
            f"""CREATE OR REPLACE TEMP TABLE {out}{child.name} AS
            SELECT {_cols(ident, "c")}, c.year, c.submission_id, c.batch, c.lopenr, c.line,
                {_cols(inherited, "r")}, {_cols((n for n, _ in child.columns), "c")}
            FROM {children[child.name]} c JOIN {out}_a a ON a.eid = c.eid
            JOIN {out}{root.name} r ON {_eq(ident, "r", "c")}
            QUALIFY row_number() OVER (PARTITION BY {_cols(child_key, "c")}
                ORDER BY a.ord DESC, c.line DESC) = 1"""
        )


# -- the state in the monthly shapes ----------------------------------------------------------


def _events_source(
    con: duckdb.DuckDBPyConnection, home: Home, spec: TableSpec, where: str, name: str
) -> str:
    """Register an event table for DuckDB and give the SQL of its events under ``where``."""
    con.register(name, events_dataset(home, spec.name))
    return f"SELECT 0 AS scope, * FROM {name} WHERE {where}"


def _scope(con: duckdb.DuckDBPyConnection, home: Home, year: int, as_of_batch: int,
           units: Iterable[str] | None, prefix: str) -> str:  # fmt: skip
    """Register the committed batches (and units) and give the filter every event obeys."""
    con.register(f"_{prefix}batches", committed_batches(home, as_of_batch))
    where = f"year = {int(year)} AND batch IN (SELECT batch FROM _{prefix}batches)"
    if units is not None:
        con.register(f"_{prefix}units", pa.table({"unit": pa.array(list(units), pa.string())}))
        where += f" AND unit IN (SELECT unit FROM _{prefix}units)"
    return where


def _fold_all(
    con: duckdb.DuckDBPyConnection,
    home: Home,
    where: str,
    prefix: str,
    only: Iterable[str] | None = None,
) -> str:
    """Fold every family (or only those of the record tables ``only``) under ``where``; the
    fold tables are ``_{prefix}s_<daily table>``."""
    out = f"_{prefix}s_"
    for family in families():
        if only is not None and family.root.name not in set(only):
            continue
        sources = {
            spec.name: _events_source(con, home, spec, where, f"_{prefix}src_{spec.name}")
            for spec in (family.root, *family.children)
        }
        fold(con, family, sources, out)
    return out


def register_daily_state(
    con: duckdb.DuckDBPyConnection,
    home: Home,
    year: int,
    as_of_batch: int,
    units: Iterable[str] | None = None,
    prefix: str = "daily_",
    tables: Iterable[str] | None = None,
) -> None:
    """Create temp views ``{prefix}<monthly table>`` for every monthly lake table: the daily
    units' state of ``year`` as known at ``as_of_batch``, with exactly the columns and types of
    ``store.lake.schema_of(<table>)`` (a table no daily message feeds is empty). Also
    ``{prefix}period_closings`` (see :func:`daily_closings`). ``units`` limits the units;
    ``tables`` the monthly tables (and so the families folded: kjernejournal's vault join
    needs the identities alone, a tenth of the fold)."""
    wanted = TABLES if tables is None else tuple(tables)
    roots = None if tables is None else _roots_of(wanted)
    where = _scope(con, home, year, as_of_batch, units, prefix)
    out = _fold_all(con, home, where, prefix, only=roots)
    for table in wanted:
        sources = [spec for spec in table_specs().values() if spec.state_table == table]
        selects = [_state_select(spec, table, f"{out}{spec.name}") for spec in sources]
        if not selects:
            selects = [_state_select(None, table, "(SELECT 1) WHERE false")]
        con.execute(f"CREATE OR REPLACE TEMP VIEW {prefix}{table} AS {' UNION ALL '.join(selects)}")
    if tables is None:
        con.execute(f"CREATE OR REPLACE TEMP VIEW {prefix}period_closings AS {_closings_sql(out)}")


def _roots_of(tables: Iterable[str]) -> set[str]:
    """The record event tables whose families feed the monthly ``tables``."""
    wanted = set(tables)
    return {s.parent or s.name for s in table_specs().values() if s.state_table in wanted}


def _state_select(spec: TableSpec | None, table: str, relation: str) -> str:
    """SELECT the monthly table's columns, in order and type, from a fold table."""
    have: dict[str, str] = {}
    if spec is not None:
        renamed = dict(spec.state_rename)
        have = {renamed.get(n, n): n for n, _ in spec.all_columns()}
        have |= {n: n for n, _ in KEYS} | {"line": "line"}
    columns = []
    for field in schema_of(table):
        sql_type = _SQL_TYPES[field.type]
        source = _q(have[field.name]) if field.name in have else "NULL"
        columns.append(f"CAST({source} AS {sql_type}) AS {_q(field.name)}")
    return f"SELECT {', '.join(columns)} FROM {relation}"


# -- closings and the counts they are compared with ----------------------------------------


def _closings_sql(out: str) -> str:
    """The live closings with one row per postart (a kind left out counts zero)."""
    return f"""
        SELECT c.unit, c.year, c.{_q("avslutningID")}, c.{_q("fraDatoPeriode")},
            c.{_q("tilDatoPeriode")}, p.postart, coalesce(t.antall, 0)::BIGINT AS antall,
            c.batch, c.submission_id
        FROM {out}{CLOSINGS} c
        CROSS JOIN (SELECT unnest({list(POSTARTS)}) AS postart) p
        LEFT JOIN {out}{TOTALS} t ON t.scope = c.scope AND t.unit = c.unit
            AND t.{_q("avslutningID")} = c.{_q("avslutningID")} AND t.postart = p.postart"""


def daily_closings(
    con: duckdb.DuckDBPyConnection,
    home: Home,
    year: int,
    as_of_batch: int,
    units: Iterable[str] | None = None,
) -> pa.Table:
    """The daily units' period closings of ``year`` as known at ``as_of_batch``: per closing
    (unit, ``avslutningID``, ``fraDatoPeriode``, ``tilDatoPeriode``) one row per postart with
    its ``antall``, the ``batch`` the closing's current version arrived in and its file."""
    prefix = "daily_closings_"
    where = _scope(con, home, year, as_of_batch, units, prefix)
    out = _fold_all(con, home, where, prefix, only=[CLOSINGS])
    return con.sql(f"{_closings_sql(out)} ORDER BY ALL").to_arrow_table()


def counts_sql(out: str, periods: str) -> str:
    """Per scope, unit and period of ``periods`` (columns scope, unit, fraDatoPeriode,
    tilDatoPeriode), the state's counts by postart (docs/messages/daily.md, "Closing a period"):
    1 live contacts whose ``innDatoTid`` falls in the period; 2 live referral periods waiting
    at some day of it (received on or before its last day, and neither started nor ended before
    its first day); 3 live identities whose ``pid`` is the patient of a contact or referral
    period counted in 1 or 2."""
    period = 'p.scope, p.unit, p."fraDatoPeriode", p."tilDatoPeriode"'
    return f"""
        WITH k AS (
            SELECT {period}, e."pasientNr" AS patient, '1' AS postart
            FROM {periods} p JOIN {out}daily_contacts e ON e.scope = p.scope
                AND e.unit = p.unit
                AND CAST(e."innDatoTid" AS DATE) BETWEEN p."fraDatoPeriode" AND p."tilDatoPeriode"
        ), h AS (
            SELECT {period}, r."pasientNr" AS patient, '2' AS postart
            FROM {periods} p JOIN {out}daily_referrals r ON r.scope = p.scope
                AND r.unit = p.unit AND r."mottattDato" <= p."tilDatoPeriode"
                AND coalesce(least(r."tjenestestart", r."avviklingsdato"), p."fraDatoPeriode")
                    >= p."fraDatoPeriode"
        ), i AS (
            SELECT DISTINCT x.scope, x.unit, x."fraDatoPeriode", x."tilDatoPeriode",
                d.pid AS patient, '3' AS postart
            FROM (SELECT * FROM k UNION ALL SELECT * FROM h) x
            JOIN {out}daily_identities d ON d.scope = x.scope AND d.unit = x.unit
                AND d.pid = x.patient
        )
        SELECT p.scope, p.unit, p."fraDatoPeriode", p."tilDatoPeriode", s.postart,
            count(x.postart)::BIGINT AS antall
        FROM {periods} p CROSS JOIN (SELECT unnest({list(POSTARTS)}) AS postart) s
        LEFT JOIN (SELECT * FROM k UNION ALL SELECT * FROM h UNION ALL SELECT * FROM i) x
            ON x.scope = p.scope AND x.unit = p.unit AND x."fraDatoPeriode" = p."fraDatoPeriode"
            AND x."tilDatoPeriode" = p."tilDatoPeriode" AND x.postart = s.postart
        GROUP BY ALL"""


def state_counts(
    con: duckdb.DuckDBPyConnection,
    home: Home,
    year: int,
    as_of_batch: int,
    units: Iterable[str] | None = None,
) -> pa.Table:
    """For every closing known at ``as_of_batch``: its totals beside the counts of the state
    as it stood at the batch the closing arrived in (``counted``), and ``difference`` =
    ``antall`` - ``counted`` (0 when they match). One fold per closing, over its unit's
    events up to the closing's batch: what the completeness gate compares."""
    closings = daily_closings(con, home, year, as_of_batch, units)
    prefix = "daily_counts_"
    con.register(f"_{prefix}closings", closings)
    con.execute(
        f"CREATE OR REPLACE TEMP TABLE _{prefix}scopes AS SELECT DISTINCT "
        f'row_number() OVER (ORDER BY unit, "avslutningID") AS scope, unit, '
        f'"avslutningID", "fraDatoPeriode", "tilDatoPeriode", batch '
        f'FROM (SELECT DISTINCT unit, "avslutningID", "fraDatoPeriode", '
        f'"tilDatoPeriode", batch FROM _{prefix}closings)'
    )
    batches = committed_batches(home, as_of_batch)
    con.register(f"_{prefix}batches", batches)
    out = f"_{prefix}s_"
    for family in families():
        sources = {}
        for spec in (family.root, *family.children):
            name = f"_{prefix}src_{spec.name}"
            con.register(name, events_dataset(home, spec.name))
            sources[spec.name] = (
                f"SELECT s.scope, e.* FROM {name} e JOIN _{prefix}scopes s "
                f"ON e.unit = s.unit AND e.batch <= s.batch WHERE e.year = {int(year)} "
                f"AND e.batch IN (SELECT batch FROM _{prefix}batches)"
            )
        fold(con, family, sources, out)
    return con.sql(
        f"""SELECT c.unit, c."avslutningID", c."fraDatoPeriode", c."tilDatoPeriode",
            c.postart, c.antall, n.antall AS counted, c.antall - n.antall AS difference,
            c.batch, c.submission_id
        FROM _{prefix}closings c JOIN _{prefix}scopes s ON s.unit = c.unit
            AND s."avslutningID" = c."avslutningID"
        JOIN ({counts_sql(out, f"_{prefix}scopes")}) n ON n.scope = s.scope
            AND n.postart = c.postart
        ORDER BY ALL"""
    ).to_arrow_table()
