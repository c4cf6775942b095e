"""Gate checks: who sent this, what is it, and is it the right version for the right period.

Run on the header and the ``Melding`` attributes before the body is read, so a file from an
unknown sender or of the wrong version is turned away at once. Two routes never reach
production but get full feedback: the validation service (receiver HER 121017) and vendor test
data (organisation number 777777777).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date

import pandas as pd

from npr_pipeline.envelope import PRODUCTION_HER, TEST_ORGNR, VALIDATION_HER
from npr_pipeline.intake.lexical import LexicalError, xs_date
from npr_pipeline.intake.reasons import Reason, reason
from npr_pipeline.messages import MessageType, all_types, by_message_type, version_for
from npr_pipeline.periods import month_end

MONTHLY, DAILY = "monthly", "daily"


def daily_types() -> frozenset[str]:
    """The MsgHead types of the daily route: every message type folder whose records are
    events (types are data)."""
    return frozenset(t.message_type for t in all_types() if t.is_event)


def report_types() -> frozenset[str]:
    """The MsgHead types of whole reports (KPP, the forløpsmelding, XPR_VTK, NPR-melding-TSB):
    every folder whose records are not events. Any unit whose registry ``message_types`` lists
    the type may send it, whatever its route."""
    return frozenset(t.message_type for t in all_types() if t.is_report)


def typed_types() -> frozenset[str]:
    """Every type the folders describe, read by the generic reader (events and reports)."""
    return daily_types() | report_types()


def unit_route(unit: dict[str, str]) -> str:
    """The unit's route from the registry's ``route`` column; empty or absent means monthly."""
    route = str(unit.get("route") or "").strip().lower()
    return DAILY if route == DAILY else MONTHLY


@dataclass(frozen=True)
class Header:
    """What intake reads from MsgHead/MsgInfo."""

    msg_type: str | None
    sender: dict[str, list[str]]
    receiver: dict[str, list[str]]
    sender_name: str | None = None


@dataclass
class GateResult:
    """The sending unit (if known), the route, and every reason found."""

    unit: dict[str, str] | None = None
    test_route: str | None = None
    reasons: list[Reason] = field(default_factory=list)

    @property
    def rejected(self) -> bool:
        return any(r.severity == "error" for r in self.reasons)


class RegistryIndex:
    """Units by HER-id, organisation number and RESH id.

    Built once per intake in the main process and inherited by every worker (fork), so it is
    kept small: each unit one tuple of its column values, each distinct value one string
    object (most columns repeat a few values), the idents mapped to row positions, and a
    unit's dict made only when a file resolves to it. 65,000 units as one dict each took
    ~115 MiB of the main process's RSS; as tuples and positions ~37 MiB (docs/benchmarks.md,
    "Session 9: the main process's memory on history").

    An ident maps to one position (an int) or, when it names several units, a tuple of them.
    A tuple for every ident would be simpler, and is not taken: on the national day's registry
    (65,000 units, 195,000 idents, none naming two units) tracemalloc counts 34.0 MiB held for
    the index as it is and 42.7 MiB with a one-element tuple per ident (+8.7 MiB, +25%, peak
    43.9 -> 50.1 MiB), in the process whose memory this layout was made to cut, at no gain in
    CPU (1.8-2.1 s to build either way).
    """

    _KINDS = (("HER", "herID"), ("ENH", "orgnr"), ("RSH", "reshID"))

    def __init__(self, registry: pd.DataFrame) -> None:
        # Column lists zipped into rows: to_dict("records") boxes every value through pandas
        # and took ~2 s for 65,000 units, once per intake in the main process.
        self.columns = tuple(str(c) for c in registry.columns)
        distinct: dict[str, str] = {}
        values = (
            [distinct.setdefault(v, v) for v in registry[column].astype(str).tolist()]
            for column in registry.columns
        )
        self._rows: list[tuple[str, ...]] = list(zip(*values, strict=True))
        self._resh = self.columns.index("reshID")
        # an ident names one unit (a position), or several (a tuple of them): see above
        self._by_kind: dict[str, dict[str, int | tuple[int, ...]]] = {k: {} for k, _ in self._KINDS}
        kinds = [(self._by_kind[kind], self.columns.index(column)) for kind, column in self._KINDS]
        for position, row in enumerate(self._rows):
            for by_value, at in kinds:
                found = by_value.setdefault(row[at], position)
                if found != position:
                    by_value[row[at]] = (*_positions(found), position)

    def _unit(self, position: int) -> dict[str, str]:
        """The unit at ``position`` as the registry's row: column name to text."""
        return dict(zip(self.columns, self._rows[position], strict=True))

    def resolve(self, idents: dict[str, list[str]]) -> tuple[dict[str, str] | None, Reason | None]:
        """The one unit all idents name, or the reason they do not."""
        matches: dict[str, set[str]] = {}
        units: dict[str, int] = {}
        for kind, values in idents.items():
            for value in values:
                for position in _positions(self._by_kind.get(kind, {}).get(value, ())):
                    resh = self._rows[position][self._resh]
                    matches.setdefault(kind, set()).add(resh)
                    units[resh] = position
        if not matches:
            shown = ", ".join(f"{k} {'/'.join(v)}" for k, v in sorted(idents.items()) if v)
            return None, reason("unknown_sender", f"Idents: {shown or 'none'}.")
        unknown = [k for k, v in idents.items() if v and k in ("HER", "RSH") and k not in matches]
        common = set.intersection(*matches.values())
        if unknown or not common:
            return None, reason("sender_mismatch", _describe(idents, matches))
        if len(common) > 1 and "RSH" not in matches:
            return None, reason("sender_mismatch", "The organisation number covers several units.")
        resh = sorted(common)[0]
        return self._unit(units[resh]), None


def _positions(found: int | tuple[int, ...]) -> tuple[int, ...]:
    return (found,) if isinstance(found, int) else found


def _describe(idents: dict[str, list[str]], matches: dict[str, set[str]]) -> str:
    parts = []
    for kind, values in sorted(idents.items()):
        found = ", ".join(sorted(matches.get(kind, set()))) or "no unit"
        parts.append(f"{kind} {'/'.join(values)} -> {found}")
    return "; ".join(parts) + "."


def check_header(header: Header, index: RegistryIndex) -> GateResult:
    """Message type, receiver and sender. The known types are the type folders'
    (:mod:`npr_pipeline.messages`): a new folder is a new type, with no change here."""
    result = GateResult()
    mtype = by_message_type(header.msg_type) if header.msg_type else None
    if mtype is None:
        result.reasons.append(reason("unknown_message_type", f"Type: {header.msg_type!r}."))
        return result
    route = DAILY if mtype.is_event else MONTHLY
    report = mtype.is_report
    receivers = set(header.receiver.get("HER", []))
    if VALIDATION_HER in receivers:
        result.test_route = "validation_service"
    elif PRODUCTION_HER not in receivers:
        result.reasons.append(
            reason("unknown_receiver", f"Receiver HER: {', '.join(sorted(receivers)) or 'none'}.")
        )
        return result
    if TEST_ORGNR in header.sender.get("ENH", []):
        result.test_route = "test_orgnr"
        return result
    unit, problem = index.resolve(header.sender)
    if problem:
        result.reasons.append(problem)
    elif unit is not None and report:
        _check_reported(result, unit, str(header.msg_type))
    elif unit is not None and unit_route(unit) != route:
        detail = f"Unit {unit['reshID']} reports {unit_route(unit)}; {header.msg_type} is {route}."
        result.reasons.append(reason("wrong_route", detail))
    result.unit = unit
    return result


def check_melding(
    gate: GateResult,
    msg_type: str,
    payload: MessageType | None,
    attrs: dict[str, str],
    received: date,
) -> None:
    """Payload type, version for the data year, period, and the unit's obligations.

    ``payload`` is the type folder the payload's namespace names (None: no folder does), of
    any route: a payload of another route under a monthly header is a ``payload_mismatch``, as
    the typed reader says the other way round; one whose header agrees reaches the monthly
    reader only if the router's parse could not read that header, and is not a monthly type.
    The version a data year needs is the folder's ``data_years``, so a new version is a new
    folder.
    """
    if payload is None:
        gate.reasons.append(reason("unknown_payload"))
        return
    if payload.message_type != msg_type:
        detail = f"Header says {msg_type}, payload is '{payload.kind}'."
        gate.reasons.append(reason("payload_mismatch", detail))
        return
    if payload.route != "monthly":
        gate.reasons.append(reason("unknown_payload", f"Not a monthly type: {payload.kind}."))
        return
    period = _period(attrs, received)
    if isinstance(period, Reason):
        gate.reasons.append(period)
        return
    start, end = period
    expected = version_for(msg_type, start.year)
    if payload.version != expected:
        detail = f"Data year {start.year} needs {expected}, got {payload.version}."
        gate.reasons.append(reason("wrong_version", detail))
    if gate.unit is not None:
        _check_unit(gate, gate.unit, msg_type, start, end)


def _period(attrs: dict[str, str], received: date) -> tuple[date, date] | Reason:
    try:
        start = xs_date(attrs.get("fraDatoPeriode", ""))
        end = xs_date(attrs.get("tilDatoPeriode", ""))
        extracted = xs_date(attrs.get("uttakDato", ""))
    except LexicalError:
        return reason("bad_period", "The period dates are missing or not ISO dates.")
    if start != date(start.year, 1, 1):
        return reason("bad_period", f"fraDatoPeriode must be 1 January (cumulative), got {start}.")
    if end.year != start.year or end != month_end(end.year, end.month):
        return reason("bad_period", f"tilDatoPeriode must be a month end of {start.year}: {end}.")
    if extracted < end or extracted > received:
        return reason(
            "bad_period", f"uttakDato {extracted} must lie between {end} and receipt {received}."
        )
    return start, end


def _check_unit(
    gate: GateResult, unit: dict[str, str], msg_type: str, start: date, end: date
) -> None:
    check_active(gate, unit, start, end)
    _check_reported(gate, unit, msg_type)


def _check_reported(gate: GateResult, unit: dict[str, str], msg_type: str) -> None:
    """The registry's ``message_types`` of the unit must list the type."""
    reported = unit.get("message_types", "").split(";")
    if msg_type not in reported:
        gate.reasons.append(
            reason("type_not_reported", f"Unit {unit['reshID']} reports {', '.join(reported)}.")
        )


def check_active(gate: GateResult, unit: dict[str, str], start: date, end: date) -> None:
    """The unit must be registered for some day of the period (a daily unit: its data year)."""
    valid_from = _date(unit.get("valid_from"))
    valid_to = _date(unit.get("valid_to"))
    if (valid_from and valid_from > end) or (valid_to and valid_to < start):
        gate.reasons.append(
            reason(
                "inactive_sender",
                f"Unit {unit['reshID']} is registered from {valid_from or '-'} "
                f"to {valid_to or '-'}.",
            )
        )


def _date(value: str | None) -> date | None:
    if not value or value in ("NaT", "nan"):
        return None
    return date.fromisoformat(value[:10])
