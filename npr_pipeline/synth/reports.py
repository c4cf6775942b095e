"""The report types in ``npr synth``: each unit's files of the report types its registry row
lists (``message_types``), from the same synthetic year as its activity.

KPP, XPR_VTK and NPR-melding-TSB are sent per tertial, year to date (the reporting calendar's
rows); the forløpsmelding every month, year to date (the pathways registered so far). Each type
numbers its own files (lopenr 1, 2, ...), as each type's messages are numbered apart.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

from npr_pipeline.periods import month_end
from npr_pipeline.synth.coercion import write_decisions
from npr_pipeline.synth.kpp import write_kpp
from npr_pipeline.synth.model import UnitYear
from npr_pipeline.synth.pathways import write_pathways
from npr_pipeline.synth.tsb import write_tsb
from npr_pipeline.synth.typed import PeriodWriter

TERTIAL_ENDS = (4, 8, 12)
# message type -> (its writer, the months whose last day ends a report; None: every month)
REPORTS: dict[str, tuple[PeriodWriter, tuple[int, ...] | None]] = {
    "NPR_KPP": (write_kpp, TERTIAL_ENDS),
    "NPR_FORLOP": (write_pathways, None),
    "XPR_VTK": (write_decisions, TERTIAL_ENDS),
    "NPR_TSB": (write_tsb, TERTIAL_ENDS),
}


def report_types_of(message_types: str) -> tuple[str, ...]:
    """The report types among a registry row's ``message_types``, in a fixed order."""
    listed = set(message_types.split(";"))
    return tuple(code for code in REPORTS if code in listed)


def write_reports(
    inbox: Path, unit_year: UnitYear, codes: tuple[str, ...], year: int, through: int, seed: int
) -> list[Path]:
    """Write the unit's report files of ``codes`` for ``year`` through month ``through``; a
    period without anything to report writes no file (and uses no lopenr)."""
    written = []
    for code in codes:
        writer, ends = REPORTS[code]
        lopenr = 1
        for month in range(1, through + 1):
            if ends is not None and month not in ends:
                continue
            period = (date(year, 1, 1), month_end(year, month))
            path = writer(inbox, unit_year, period, lopenr, seed)
            if path is not None:
                written.append(path)
                lopenr += 1
    return written
