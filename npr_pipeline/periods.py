"""Reporting periods: months, tertials and the year, all year to date.

Monthly files are cumulative from 1 January, so every period is read as "data from 1 January up
to the period's last day" (its coverage), while its statistical window (RULES.md) is the month,
the tertial's own four months or the year.
"""

from __future__ import annotations

import calendar
import re
from dataclasses import dataclass
from datetime import date

_MONTH = re.compile(r"^(\d{4})-(0[1-9]|1[0-2])$")
_TERTIAL = re.compile(r"^(\d{4})-T([123])$")
_YEAR = re.compile(r"^(\d{4})$")


@dataclass(frozen=True, order=True)
class Period:
    """A reporting period: ``kind`` is month, tertial or year; ``index`` the month or tertial."""

    year: int
    kind: str
    index: int

    @classmethod
    def parse(cls, text: str) -> Period:
        """Parse ``2026-03``, ``2026-T1`` or ``2026``; a clear ValueError for anything else."""
        if m := _MONTH.match(text):
            return cls(int(m[1]), "month", int(m[2]))
        if m := _TERTIAL.match(text):
            return cls(int(m[1]), "tertial", int(m[2]))
        if m := _YEAR.match(text):
            return cls(int(m[1]), "year", 12)
        raise ValueError(f"not a period: {text!r} (expected YYYY-MM, YYYY-T1..T3 or YYYY)")

    def __str__(self) -> str:
        if self.kind == "month":
            return f"{self.year}-{self.index:02d}"
        if self.kind == "tertial":
            return f"{self.year}-T{self.index}"
        return str(self.year)

    @property
    def last_month(self) -> int:
        """The last calendar month the period covers."""
        if self.kind == "tertial":
            return self.index * 4
        return self.index

    @property
    def first_month_of_window(self) -> int:
        """First month of the statistical window (RULES.md: a tertial is its own four months)."""
        if self.kind == "month":
            return self.index
        if self.kind == "tertial":
            return self.last_month - 3
        return 1

    @property
    def start(self) -> date:
        """First day of the coverage: data are year to date."""
        return date(self.year, 1, 1)

    @property
    def end(self) -> date:
        """Last day of the period: every obligated unit's data must reach it."""
        return month_end(self.year, self.last_month)

    @property
    def window(self) -> tuple[date, date]:
        """The statistical window W: first and last day."""
        return date(self.year, self.first_month_of_window, 1), self.end

    @property
    def months(self) -> list[str]:
        """The months of the window, as month period names."""
        first = self.first_month_of_window
        return [f"{self.year}-{m:02d}" for m in range(first, self.last_month + 1)]

    @property
    def official(self) -> bool:
        """Monthly figures are preliminary; tertial and annual figures official."""
        return self.kind != "month"


def month_end(year: int, month: int) -> date:
    """Last day of a calendar month."""
    return date(year, month, calendar.monthrange(year, month)[1])
