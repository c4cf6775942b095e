"""The completeness gate: which units must have delivered for a step and period, and who has.

"All units must have delivered before production starts." Obligations come from the registry
and the reporting calendar: a calendar row names a period, an audience (``all`` units except
contract specialists, ``contract_specialists``, ``isf_agreement``) and the steps it serves.
Delivered means a current, accepted ord and its ide whose data reach the period's end. Only the
ord/ide pair is gated; other message types a unit owes (KPP, PAK) are outside this platform.
A unit on the daily route (registry ``route``) has delivered when it has closed the period and
its totals matched (:mod:`.daily_gate`); a missing one says why (``reason``, ``difference``).

``judge_period`` is the gate's verdict for a period: every step judged from one reading of the
ledger, the audited override (if any) checked against it, and the exact submissions production
may read: the complete ord+ide pairs of units that are not excused. The period's input snapshot
is built from that verdict and stores it (``snapshot.build_snapshot``), so what was judged is
what is produced, and a step refuses a snapshot whose gate is closed, whatever starts it.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime

import numpy as np
import pandas as pd

from npr_pipeline import reference
from npr_pipeline.home import Home
from npr_pipeline.messages import monthly_types
from npr_pipeline.periods import Period
from npr_pipeline.production import STEPS
from npr_pipeline.production.daily_gate import NO_DAILY_GATE, DailyGate, DailyProblem
from npr_pipeline.production.daily_inputs import DailyInput
from npr_pipeline.production.inputs import PeriodInput, period_input
from npr_pipeline.registry import lists_types
from npr_pipeline.store.lake import current_for_period
from npr_pipeline.warehouse import retype, utc_timestamp, writer

PAIR = monthly_types()  # the monthly route's messages (ord and ide): both, from every unit


class OverrideError(ValueError):
    """An override that cannot be granted: no reason, or units that are not missing."""


@dataclass(frozen=True)
class Missing:
    """A unit that has not delivered: who, what it last sent, and its deadline."""

    reshID: str  # noqa: N815 - the register's own name for the id
    name: str
    last_submission: str | None
    deadline: str | None
    days_to_deadline: int | None
    reason: str | None = None  # daily units: "not_closed" or "totals_differ"
    difference: dict[str, dict[str, int]] | None = None  # per closing and postart


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


def obligations(
    registry: pd.DataFrame, period: Period, step: str, active: pd.DataFrame | None = None
) -> pd.DataFrame:
    """Units obliged to deliver ord+ide for ``step`` in ``period``, with their deadlines.

    ``active``: the registry's units active in the period (``_active``), when the caller has
    them already (every step's gate reads the same ones)."""
    rows = _calendar_rows(period, step)
    active = _active(registry, period) if active is None else active
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
    """Units registered for the whole of the period's coverage that report every monthly
    message (:data:`PAIR`)."""
    start, end = period.start.isoformat(), period.end.isoformat()
    valid_from = registry["valid_from"].fillna("").astype(str)
    valid_to = registry["valid_to"].fillna("").astype(str)
    reports = lists_types(registry, PAIR)
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
    daily: DailyGate = NO_DAILY_GATE,
) -> GateStatus:
    """The gate of one step and period as of ``today`` (``daily``: the daily units' verdict,
    :func:`.daily_gate.daily_gate`)."""
    return gate_statuses(registry, ledger, period, today, allowed_missing, (step,), daily)[0]


def gate_statuses(
    registry: pd.DataFrame,
    ledger: pd.DataFrame,
    period: Period,
    today: date,
    allowed_missing: list[str] | None = None,
    steps: tuple[str, ...] = STEPS,
    daily: DailyGate = NO_DAILY_GATE,
) -> list[GateStatus]:
    """The gate of each of ``steps`` for ``period`` as of ``today``, from one reading.

    The current submissions, the complete units and the active registry rows are worked out
    once for every step, and with whole-column operations: at 65,000 units (TB2026-12) a
    per-unit Python loop or a per-unit group aggregate costs seconds per step
    (docs/benchmarks.md, "The gate over 65,000 units").
    """
    current = _monthly(current_for_period(ledger, period))
    return _statuses(registry, current, period, today, allowed_missing, steps, daily)


def _statuses(
    registry: pd.DataFrame,
    current: pd.DataFrame,
    period: Period,
    today: date,
    allowed_missing: list[str] | None,
    steps: tuple[str, ...] = STEPS,
    daily: DailyGate = NO_DAILY_GATE,
) -> list[GateStatus]:
    """``gate_statuses`` from the period's current ord and ide (``_monthly``): a monthly unit
    has delivered with its complete pair, a daily unit by its closings (``daily``)."""
    daily_units = pd.Index(list(daily.input.units), dtype=object)
    delivered = _complete(current).difference(daily_units)
    delivered = delivered.union(pd.Index(sorted(daily.delivered), dtype=object))
    last = _last_submission(current)
    active = _active(registry, period)[["reshID", "name", "unit_type", "isf_agreement"]]
    return [
        _status(obligations(registry, period, step, active), delivered, last, period, step, today,
                allowed_missing, daily.problems)
        for step in steps
    ]  # fmt: skip


def _status(
    expected: pd.DataFrame,
    delivered: pd.Index,
    last: pd.Series,
    period: Period,
    step: str,
    today: date,
    allowed_missing: list[str] | None,
    problems: dict[str, DailyProblem],
) -> GateStatus:
    """One step's gate: its obligated units against the units that delivered; a daily unit
    that did not says why (``problems``: not closed, or its totals differ)."""
    absent = expected[~_member(expected["reshID"], delivered)]
    missing = []
    for row in absent.itertuples(index=False):
        problem = problems.get(row.reshID)
        missing.append(
            Missing(
                reshID=row.reshID,
                name=row.name,
                last_submission=last.get(row.reshID),
                deadline=row.first_deadline,
                days_to_deadline=(date.fromisoformat(row.first_deadline) - today).days
                if row.first_deadline
                else None,
                reason=problem.reason if problem else None,
                difference=problem.difference or None if problem else None,
            )
        )
    deadlines = expected["first_deadline"].dropna()
    return GateStatus(
        step=step,
        period=str(period),
        expected=len(expected),
        delivered=len(expected) - len(missing),
        missing=missing,
        deadline=deadlines.min() if len(deadlines) else None,
        allowed_missing=sorted(allowed_missing or []),
    )


def _member(values: pd.Series, of: pd.Index) -> np.ndarray:
    """Which ``values`` are in ``of`` (unique): a hash lookup. ``Series.isin`` on pandas'
    Arrow-backed strings (what a registry read as text is) builds its lookup value by value in
    Python: 0.8 s per step at 65,000 units."""
    return pd.Index(of.to_numpy(dtype=object)).get_indexer(values.to_numpy(dtype=object)) >= 0


def _last_submission(current: pd.DataFrame) -> pd.Series:
    """Per unit, the latest data end (``period_to``) of its current submissions."""
    ordered = current.sort_values(["unit", "period_to"], na_position="first")
    newest = ordered.drop_duplicates("unit", keep="last")
    return newest.set_index("unit")["period_to"]


def _monthly(current: pd.DataFrame) -> pd.DataFrame:
    """The monthly messages (:data:`PAIR`) among the current submissions (daily files are
    judged by closings, report types such as KPP are not gated here)."""
    return current.loc[current["message_type"].isin(PAIR)].reset_index(drop=True)


def _covering(current: pd.DataFrame) -> pd.DataFrame:
    """The current submissions whose data reach the period's end (also on an empty ledger)."""
    return current.loc[current["covers"].astype(bool)]


def _complete(current: pd.DataFrame) -> pd.Index:
    """Units whose current ord and ide both reach the period's end (sorted)."""
    covering = _covering(current)
    ords, ides = (
        pd.Index(covering.loc[covering["message_type"] == kind, "unit"].unique())
        for kind in ("NPR_ORD", "NPR_IDE")
    )
    return ords.intersection(ides).sort_values()


@dataclass(frozen=True)
class Override:
    """An audited override: produce without the named units, who asked, when and why."""

    allowed_missing: tuple[str, ...]
    reason: str
    requested_by: str
    requested_at: str

    @classmethod
    def of(
        cls, units: list[str], reason: str, requested_by: str, requested_at: str = ""
    ) -> Override | None:
        """The override for ``units`` (None without units); refused without a reason.
        ``requested_at`` defaults to now."""
        chosen = tuple(sorted({u.strip() for u in units if u.strip()}))
        if not chosen:
            return None
        if not reason.strip():
            raise OverrideError("an override (allow missing units) needs a reason")
        now = requested_at or datetime.now(UTC).isoformat(timespec="seconds")
        return cls(chosen, reason.strip(), requested_by, now)

    def as_json(self) -> dict[str, object]:
        return {**asdict(self), "allowed_missing": list(self.allowed_missing)}


@dataclass
class GateVerdict:
    """Every step's gate for one period, judged from one reading of the ledger and registry.

    ``inputs`` are the submissions production may read: the complete (ord and ide reach the
    period's end) deliveries of units that are not excused. An excused unit is left out of the
    period as a whole, as is a unit that sent only half a delivery (its lone ord would fail the
    ident checks, and its gate is closed or it is not obligated). ``judged`` lists every current
    submission of the period with whether it was included.
    """

    period: str
    judged_at: str
    statuses: list[GateStatus]
    override: Override | None
    judged: pd.DataFrame
    left_out: dict[str, str]  # unit -> "excused" | "incomplete"
    inputs: PeriodInput

    def status(self, step: str) -> GateStatus:
        return next(s for s in self.statuses if s.step == step)

    def closed(self, steps: list[str] | tuple[str, ...] = STEPS) -> list[GateStatus]:
        """The gates of ``steps`` that are closed (a missing unit without an override)."""
        return [s for s in self.statuses if s.step in steps and not s.open]

    def step_json(self, step: str) -> dict[str, object]:
        """What a delivery records about its gate (CONTRACT.md: gate, missing, override)."""
        status = self.status(step)
        excused = [m.reshID for m in status.missing if m.reshID in status.allowed_missing]
        return {
            "step": step,
            "period": self.period,
            "gate": "open" if status.open else "closed",
            "judged_at": self.judged_at,
            "expected": status.expected,
            "delivered": status.delivered,
            "missing": [_missing_json(m) for m in status.missing],
            "excused": excused,
            "left_out": self.left_out,
            "override": self.override.as_json() if self.override else None,
        }


def _missing_json(m: Missing) -> dict[str, object]:
    """A missing unit as a delivery records it: ``reshID``, ``name`` (CONTRACT.md) and, for a
    daily unit, ``reason`` and ``difference``."""
    doc: dict[str, object] = {"reshID": m.reshID, "name": m.name}
    if m.reason:
        doc["reason"] = m.reason
    if m.difference:
        doc["difference"] = m.difference
    return doc


def judge_period(
    registry: pd.DataFrame,
    ledger: pd.DataFrame,
    period: Period,
    today: date,
    override: Override | None = None,
    daily: DailyGate = NO_DAILY_GATE,
) -> GateVerdict:
    """The gate of every step of ``period``, the override checked, and what may be produced.

    ``daily`` is the daily units' verdict (:func:`.daily_gate.daily_gate`): those that closed
    the period with matching totals are read from the consolidated state at its batch; the
    others are left out (``not_closed`` or ``totals_differ``) as an incomplete monthly unit is.

    Raises ``OverrideError`` when the override names a unit that is not missing for any step
    (delivered, not obliged, or not a unit at all): an override names the units it excuses.
    """
    allowed = list(override.allowed_missing) if override else []
    current = _monthly(current_for_period(ledger, period))
    statuses = _statuses(registry, current, period, today, allowed, STEPS, daily)
    if override:
        _check_override(registry, statuses, override)
    complete = set(_complete(current)) - set(daily.input.units)
    excused = set(allowed)
    left_out = (
        {unit: "incomplete" for unit in set(_covering(current)["unit"]) - complete - excused}
        | {unit: p.reason for unit, p in daily.problems.items() if unit not in excused}
        | {unit: "excused" for unit in excused}
    )
    included = sorted(complete - excused)
    included_daily = DailyInput(tuple(sorted(daily.delivered - excused)), daily.input.batch)
    judged = current.assign(
        included=current["unit"].isin(included) & current["covers"].astype(bool)
    )
    return GateVerdict(
        period=str(period),
        judged_at=datetime.now(UTC).isoformat(timespec="seconds"),
        statuses=statuses,
        override=override,
        judged=judged.reset_index(drop=True),
        left_out=dict(sorted(left_out.items())),
        inputs=period_input(ledger, period, included, current, included_daily)
        if len(current)
        else PeriodInput(period, current, current, ledger.iloc[0:0], included_daily),
    )


def _check_override(registry: pd.DataFrame, statuses: list[GateStatus], override: Override) -> None:
    units = set(registry["reshID"].astype(str))
    missing = {m.reshID for s in statuses for m in s.missing}
    unknown = [u for u in override.allowed_missing if u not in units]
    present = [u for u in override.allowed_missing if u in units and u not in missing]
    problems = []
    if unknown:
        problems.append(f"not a unit in the registry: {', '.join(unknown)}")
    if present:
        problems.append(f"not missing for {statuses[0].period}: {', '.join(present)}")
    if problems:
        raise OverrideError(
            "override refused: "
            + "; ".join(problems)
            + " (--allow-missing names only units the gate reports missing)"
        )


GATE_RUNS_DDL = """CREATE TABLE IF NOT EXISTS gate_runs (run_id VARCHAR, period VARCHAR,
    step VARCHAR, checked TIMESTAMP, expected INTEGER, delivered INTEGER, missing VARCHAR,
    allowed_missing VARCHAR, reason VARCHAR, requested_by VARCHAR, gate VARCHAR,
    build_id VARCHAR)"""


def record_gate_runs(home: Home, run_id: str, records: list[dict[str, object]]) -> None:
    """Keep each judged gate (as stored in a snapshot build) in the warehouse's ``gate_runs``:
    the snapshot is replaced by the next build, this history and the versions are not."""
    with writer(home) as con:
        con.execute(GATE_RUNS_DDL)
        con.execute("ALTER TABLE gate_runs ADD COLUMN IF NOT EXISTS build_id VARCHAR")
        retype(con, "gate_runs", "checked", "TIMESTAMP")  # VARCHAR (ISO, UTC) before
        for record in records:
            override = record.get("override") or {}
            con.execute(
                """INSERT INTO gate_runs (run_id, period, step, checked, expected, delivered,
                   missing, allowed_missing, reason, requested_by, gate, build_id)
                   VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)""",
                [
                    run_id,
                    record["period"],
                    record["step"],
                    utc_timestamp(record["judged_at"]),
                    record["expected"],
                    record["delivered"],
                    json.dumps(record["missing"], ensure_ascii=False),
                    json.dumps(override.get("allowed_missing", [])),
                    override.get("reason"),
                    override.get("requested_by"),
                    record["gate"],
                    record["build_id"],
                ],
            )
