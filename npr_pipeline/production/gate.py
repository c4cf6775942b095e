"""The completeness gate: which units must have delivered for a step and period, and who has.

"All units must have delivered before production starts." Obligations come from the registry
and the reporting calendar: a calendar row names a period, an audience (``all`` units except
contract specialists, ``contract_specialists``, ``isf_agreement``) and the steps it serves.
Delivered means a current, accepted ord and its ide whose data reach the period's end. Only the
ord/ide pair is gated; other message types a unit owes (KPP, PAK) are outside this platform.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import date

import pandas as pd

from npr_pipeline import reference
from npr_pipeline.lake import current_for_period
from npr_pipeline.periods import Period


@dataclass(frozen=True)
class Missing:
    """A unit that has not delivered: who, what it last sent, and its deadline."""

    reshID: str  # noqa: N815 - the register's own name for the id
    name: str
    last_submission: str | None
    deadline: str | None
    days_to_deadline: int | None


@dataclass
class GateStatus:
    """Expected, delivered and missing units of one step and period."""

    step: str
    period: str
    expected: int
    delivered: int
    missing: list[Missing] = field(default_factory=list)
    deadline: str | None = None
    allowed_missing: list[str] = field(default_factory=list)

    @property
    def unexcused(self) -> list[Missing]:
        """Missing units not covered by an audited override."""
        return [m for m in self.missing if m.reshID not in self.allowed_missing]

    @property
    def open(self) -> bool:
        return not self.unexcused

    def as_json(self) -> dict[str, object]:
        return {
            "step": self.step,
            "expected": self.expected,
            "delivered": self.delivered,
            "missing": [asdict(m) for m in self.missing],
            "deadline": self.deadline,
            "gate": "open" if self.open else "closed",
            "allowed_missing": self.allowed_missing,
        }


def obligations(registry: pd.DataFrame, period: Period, step: str) -> pd.DataFrame:
    """Units obliged to deliver ord+ide for ``step`` in ``period``, with their deadlines."""
    rows = _calendar_rows(period, step)
    active = _active(registry, period)
    parts = []
    for row in rows.itertuples(index=False):
        units = _audience(active, row.audience)
        parts.append(
            units.assign(
                first_deadline=row.first_deadline.date().isoformat(),
                second_deadline=None
                if pd.isna(row.second_deadline)
                else row.second_deadline.date().isoformat(),
            )
        )
    if not parts:
        return active.iloc[0:0].assign(first_deadline=None, second_deadline=None)
    found = pd.concat(parts, ignore_index=True)
    return found.drop_duplicates("reshID", keep="first").reset_index(drop=True)


def _calendar_rows(period: Period, step: str) -> pd.DataFrame:
    calendar = reference.calendar(period.year)
    rows = calendar[calendar["period"] == str(period)]
    return rows[rows["steps"].str.split(";").map(lambda steps: step in steps)]


def _active(registry: pd.DataFrame, period: Period) -> pd.DataFrame:
    """Units registered for the whole of the period's coverage that report ord and ide."""
    start, end = period.start.isoformat(), period.end.isoformat()
    valid_from = registry["valid_from"].fillna("").astype(str)
    valid_to = registry["valid_to"].fillna("").astype(str)
    reports = registry["message_types"].astype(str).str.contains("NPR_ORD") & registry[
        "message_types"
    ].astype(str).str.contains("NPR_IDE")
    active = (valid_from <= end) & ((valid_to == "") | (valid_to >= start))
    return registry[reports & active]


def _audience(units: pd.DataFrame, audience: str) -> pd.DataFrame:
    specialist = units["unit_type"] == "contract_specialist"
    if audience == "contract_specialists":
        return units[specialist]
    if audience == "isf_agreement":
        return units[units["isf_agreement"].astype(str).str.lower() == "true"]
    return units[~specialist]


def gate_status(
    registry: pd.DataFrame,
    ledger: pd.DataFrame,
    period: Period,
    step: str,
    today: date,
    allowed_missing: list[str] | None = None,
) -> GateStatus:
    """The gate of one step and period as of ``today``."""
    expected = obligations(registry, period, step)
    current = current_for_period(ledger, period)
    covering = current[current["covers"]]
    pairs = covering.groupby("unit")["message_type"].agg(set)
    delivered_units = {u for u, types in pairs.items() if {"NPR_ORD", "NPR_IDE"} <= types}
    last = current.groupby("unit")["period_to"].max()
    missing = [
        Missing(
            reshID=row.reshID,
            name=row.name,
            last_submission=last.get(row.reshID),
            deadline=row.first_deadline,
            days_to_deadline=(date.fromisoformat(row.first_deadline) - today).days
            if row.first_deadline
            else None,
        )
        for row in expected.itertuples(index=False)
        if row.reshID not in delivered_units
    ]
    deadlines = sorted(d for d in expected["first_deadline"].dropna())
    return GateStatus(
        step=step,
        period=str(period),
        expected=len(expected),
        delivered=len(expected) - len(missing),
        missing=missing,
        deadline=deadlines[0] if deadlines else None,
        allowed_missing=sorted(allowed_missing or []),
    )
