"""The consumer of the report types (KPP, the forløpsmelding, XPR_VTK, NPR-melding-TSB): which
report of each unit and period is current, how many records it holds, and who must send one.

A report replaces the unit's earlier reports of the same period (``meldingstype`` B), as the
monthly route's files do: the **current** report of a unit, type, year and period
(``fraDatoPeriode``-``tilDatoPeriode``) is its accepted one with the highest lopenr. Its rows are
in the type's Delta tables (:mod:`npr_pipeline.store.events`), visible through the committed
batches only. A unit must send a type for a period when its registry ``message_types`` lists
it, the reporting calendar lists the type for the period (``reporting_calendar.csv``: KPP,
XPR_VTK and TSB per tertial and year, the forløpsmelding every 2026 period) and the type's own
calendar has opened production (the forløpsmelding from 1 June 2026).

A type whose calendar has a start deadline (the forløpsmelding: 16 May 2026, seed 000) also
names, once the deadline has passed, the units the registry obliges to send it that have sent
no file of it at all, not even in the trial (:func:`not_started`). That is a chase list for the
registry, not a gate: production's completeness for the type follows the obligations above.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field
from datetime import date, datetime

import duckdb
import pandas as pd

from npr_pipeline import duck, reference
from npr_pipeline.home import Home
from npr_pipeline.messages import MessageType, all_types, reception_phase
from npr_pipeline.periods import Period
from npr_pipeline.registry import lists_types
from npr_pipeline.store.batches import committed_batches
from npr_pipeline.store.events import events_dataset

# The warehouse's ``message_counts``: its columns and their SQL types.
COUNT_TYPES = {"unit": "VARCHAR", "message_type": "VARCHAR", "year": "INTEGER",
               "period_from": "DATE", "period_to": "DATE", "records": "BIGINT",
               "submission_id": "VARCHAR", "lopenr": "BIGINT"}  # fmt: skip


def report_types() -> tuple[MessageType, ...]:
    """The message types whose records are whole reports, not events (the newest version)."""
    newest: dict[str, MessageType] = {}
    for mtype in all_types():
        if mtype.is_report and mtype.data_year >= newest.get(mtype.message_type, mtype).data_year:
            newest[mtype.message_type] = mtype
    return tuple(newest[code] for code in sorted(newest))


def current_reports(ledger: pd.DataFrame) -> pd.DataFrame:
    """Per unit, report type, year and period: the accepted report with the highest lopenr."""
    codes = {t.message_type for t in report_types()}
    accepted = ledger[(ledger["status"] == "accepted") & ledger["message_type"].isin(codes)]
    keys = ["unit", "message_type", "year", "period_from", "period_to"]
    ordered = accepted.sort_values(["lopenr", "submission_id"])
    return ordered.groupby(keys, as_index=False).tail(1)[[*keys, "submission_id", "lopenr"]]


def message_counts(home: Home, ledger: pd.DataFrame) -> pd.DataFrame:
    """The warehouse's ``message_counts``: each current report with its number of records."""
    return count_records(home, current_reports(ledger))


def count_records(home: Home, current: pd.DataFrame) -> pd.DataFrame:
    """``current`` (rows of :func:`current_reports`) with their number of records: rows of the
    type's record table in committed batches."""
    counts = []
    con = duck.connect()
    if not current.empty:  # a HOME without reports never opens the batches or Delta tables
        con.register("_committed", committed_batches(home))
    for mtype in report_types():
        mine = current[current["message_type"] == mtype.message_type]
        if mine.empty:
            continue
        con.register("_rows", events_dataset(home, mtype.tables[0].name))
        con.register("_mine", mine[["submission_id"]])
        found = con.execute(
            "SELECT submission_id, count(*) AS records FROM _rows WHERE submission_id IN "
            "(SELECT submission_id FROM _mine) AND batch IN (SELECT batch FROM _committed) "
            "GROUP BY submission_id"
        ).df()
        counts.append(mine.merge(found, on="submission_id", how="left"))
    con.close()
    if not counts:
        return pd.DataFrame({c: pd.Series(dtype=object) for c in COUNT_TYPES})
    frame = pd.concat(counts, ignore_index=True)
    frame["records"] = frame["records"].fillna(0).astype("int64")
    return frame[list(COUNT_TYPES)].sort_values(["message_type", "unit", "period_to"])


def store_counts(con: duckdb.DuckDBPyConnection, counts: pd.DataFrame) -> None:
    """Replace the warehouse's ``message_counts`` (in the caller's transaction), typed also
    when it is empty."""
    con.register("_counts", counts)
    columns = ", ".join(f'CAST("{c}" AS {t}) AS "{c}"' for c, t in COUNT_TYPES.items())
    con.execute(f"CREATE OR REPLACE TABLE message_counts AS SELECT {columns} FROM _counts")
    con.unregister("_counts")


@dataclass(frozen=True)
class Obligation:
    """One report type's units for a period: who must send it, who has, who has not
    (``delivered``: every unit whose current report covers the period, obliged or not; the
    JSON counts the obliged ones, as the production steps do)."""

    message_type: str
    phase: str
    expected: list[dict[str, str]]
    delivered: list[str]
    start_deadline: date | None = None  # the type calendar's, if it has one
    not_started: list[dict[str, str]] = field(default_factory=list)  # see :func:`not_started`

    def as_json(self) -> dict[str, object]:
        done = set(self.delivered) & {u["reshID"] for u in self.expected}
        deadline = None if self.start_deadline is None else self.start_deadline.isoformat()
        return {
            "message_type": self.message_type,
            "phase": self.phase,
            "expected": len(self.expected),
            "delivered": len(done),
            "missing": [u for u in self.expected if u["reshID"] not in done],
            "units": [u | {"delivered": u["reshID"] in done} for u in self.expected],
            "start_deadline": deadline,
            "not_started": [u | {"start_deadline": deadline} for u in self.not_started],
        }


NOT_DUE = "not_due"  # the phase of a type the reporting calendar does not list for the period


def due_types(period: Period) -> frozenset[str]:
    """The message types the reporting calendar lists for ``period`` (any audience)."""
    rows = reference.calendar(period.year)
    rows = rows[rows["period"] == str(period)]
    return frozenset(t for types in rows["message_types"] for t in str(types).split(";"))


def obligations(
    registry: pd.DataFrame,
    ledger: pd.DataFrame,
    start: date,
    end: date,
    today: date,
    due: Collection[str] | None = None,
) -> list[Obligation]:
    """Per report type, the units obliged for the period ``start``-``end`` (none before the
    type's calendar opens production on the period's last day, none when ``due``, the types
    the reporting calendar lists for the period, leaves it out), those whose current report
    covers it (``period_from`` <= ``start`` and ``period_to`` >= ``end``) and, judged on
    ``today``, those that have not started (:func:`not_started`)."""
    current = current_reports(ledger)
    found = []
    for mtype in report_types():
        code = mtype.message_type
        listed = lists_types(registry, (code,))
        phase = reception_phase(mtype, end) if due is None or code in due else NOT_DUE
        units = registry[listed] if phase == "ordinary" else registry.iloc[0:0]
        expected = [{"reshID": str(r.reshID), "name": str(r.name)} for r in units.itertuples()]
        mine = current[current["message_type"] == code]
        covers = mine[
            (pd.to_datetime(mine["period_from"]).dt.date <= start)
            & (pd.to_datetime(mine["period_to"]).dt.date >= end)
        ]
        deadline = None if mtype.calendar is None else mtype.calendar.start_deadline
        late = not_started(registry, ledger, mtype, today)
        found.append(Obligation(code, phase, expected, sorted(set(covers["unit"])), deadline, late))
    return found


def not_started(
    registry: pd.DataFrame, ledger: pd.DataFrame, mtype: MessageType, today: date
) -> list[dict[str, str]]:
    """The units that had not started sending ``mtype`` when its start deadline passed.

    After the calendar's ``start_deadline`` (none before it or on the day itself; none for a
    type without a calendar): the units the registry obliges to send the type (``message_types``
    lists it) and registers on the deadline day, with no file of the type received by
    ``today``, whatever became of it: a trial or validation-service file (status ``test``) or
    a rejected one shows the unit has started and gets its answers; only silence is named.
    """
    calendar = mtype.calendar
    if calendar is None or today <= calendar.start_deadline:
        return []
    code, deadline = mtype.message_type, calendar.start_deadline.isoformat()
    mine = ledger[ledger["message_type"] == code]
    received = mine["received"].map(lambda text: datetime.fromisoformat(text).date())  # as intake
    sent = set(mine.loc[received <= today, "unit"].dropna())
    valid_from = registry["valid_from"].fillna("").astype(str)
    valid_to = registry["valid_to"].fillna("").astype(str)
    registered = (valid_from <= deadline) & ((valid_to == "") | (valid_to >= deadline))
    silent = lists_types(registry, (code,)) & registered & ~registry["reshID"].isin(sent)
    return [{"reshID": str(r.reshID), "name": str(r.name)} for r in registry[silent].itertuples()]
