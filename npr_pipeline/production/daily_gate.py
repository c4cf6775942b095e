"""Completeness of daily units: closed and matching, as the state stood when they closed.

A daily unit has delivered a period when a period closing (``NPR_AVSLUTNING``) of its covers
the period's last day, and every closing of its that overlaps the period matched the state as
known at the batch that closing arrived in (``store.consolidated.state_counts``, the rule in
docs/messages/daily.md, "Closing a period"). Corrections after a close change the state, not
the state the close was compared with, so they never reopen the gate; they reach the
deliveries through the state the next snapshot reads.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd

from npr_pipeline import duck
from npr_pipeline.home import Home
from npr_pipeline.periods import Period
from npr_pipeline.production.daily_inputs import NO_DAILY, DailyInput, daily_units
from npr_pipeline.store.batches import committed_batch
from npr_pipeline.store.consolidated import state_counts
from npr_pipeline.store.state import state_path

NOT_CLOSED = "not_closed"
TOTALS_DIFFER = "totals_differ"


@dataclass(frozen=True)
class DailyProblem:
    """Why a daily unit has not delivered: no closing, or totals that did not match (per
    closing and postart, ``antall`` - the state's count)."""

    reason: str
    difference: dict[str, dict[str, int]] = field(default_factory=dict)


@dataclass(frozen=True)
class DailyGate:
    """The daily units of a period's year, the batch judged at, and those not delivered."""

    input: DailyInput = NO_DAILY
    problems: dict[str, DailyProblem] = field(default_factory=dict)

    @property
    def delivered(self) -> set[str]:
        return set(self.input.units) - set(self.problems)


NO_DAILY_GATE = DailyGate()


def daily_gate(home: Home, registry: pd.DataFrame, period: Period) -> DailyGate:
    """Judge every daily unit of the registry for ``period`` at the newest committed batch."""
    units = daily_units(registry, period.year)
    if not units:
        return NO_DAILY_GATE
    batch = committed_batch(home)
    counts = _counts(home, period.year, batch, tuple(units))
    return DailyGate(DailyInput(tuple(units), batch), judge_closings(counts, units, period))


_COUNTED: dict[tuple[object, ...], pd.DataFrame] = {}
"""The last ``state_counts`` of this process, by state file (path, inode and last write: a
HOME made again at the same path is another), year, batch and units."""


def _counts(home: Home, year: int, batch: int, units: tuple[str, ...]) -> pd.DataFrame:
    """``state_counts`` at ``batch``, folded once per process: the counts are a function of
    the events committed up to the batch, which never change (a later intake commits a higher
    batch), so ``npr run``'s verdict before launching and the snapshot build in the same
    process share one fold (a closing per month and daily unit, each over its unit's events)."""
    path, stat = state_path(home), state_path(home).stat()
    key = (str(path.resolve()), stat.st_ino, stat.st_mtime_ns, year, batch, units)
    if key not in _COUNTED:
        con = duck.connect()
        try:
            counted = state_counts(con, home, year, batch, units).to_pandas()
        finally:
            con.close()
        _COUNTED.clear()  # one HOME and batch at a time: a long-lived process does not grow
        _COUNTED[key] = counted
    return _COUNTED[key].copy()


def judge_closings(
    counts: pd.DataFrame, units: list[str], period: Period
) -> dict[str, DailyProblem]:
    """Per unit without a delivery for ``period``, why (``counts`` as ``state_counts``)."""
    start, end = period.start, period.end
    frm = pd.to_datetime(counts["fraDatoPeriode"]).dt.date
    til = pd.to_datetime(counts["tilDatoPeriode"]).dt.date
    overlapping = counts[(frm <= end) & (til >= start)]
    covering = set(counts.loc[(frm <= end) & (til >= end), "unit"])
    problems: dict[str, DailyProblem] = {}
    for unit in units:
        if unit not in covering:
            problems[unit] = DailyProblem(NOT_CLOSED)
            continue
        own = overlapping[(overlapping["unit"] == unit) & (overlapping["difference"] != 0)]
        if len(own):
            difference: dict[str, dict[str, int]] = {}
            for row in own.itertuples(index=False):
                closing = difference.setdefault(str(row.avslutningID), {})
                closing[str(row.postart)] = int(row.difference)
            problems[unit] = DailyProblem(TOTALS_DIFFER, difference)
    return problems
