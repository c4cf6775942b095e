"""A unit's synthetic year as daily events that net out to the truth (issue 13).

The same :class:`~npr_pipeline.synth.model.UnitYear` the monthly files show, told the way a
unit's systems would send it day by day. A record enters on the day it becomes reportable by the
monthly route's rule (:mod:`npr_pipeline.synth.cutoff`), so that once every event through a
month has been applied, the state is :func:`npr_pipeline.synth.truth.truth_as_of` that month:

- departments (``enhet``): N on 1 January;
- a patient (``pasient``) and its identity (``ident``): N on the first day one of its contacts
  or referral periods is reportable;
- a contact (``kontakt``): N on the day it ends;
- a referral period (``henvisning``): N on the day it is received (1 January for one received
  the year before, with what was known by then), then a T on each later day its monthly view
  changes (assessed, a postponement starts or ends, the wait ends), carrying what changed;
- the closing (``avslutning``): per month, on its last day at 23:59, the control totals of the
  truth at that moment (:func:`control_totals`).

Corrections, all within the month of the record so that each month's truth holds at its end:
a contact or patient sent with a wrong value and corrected by an M with the whole record; a
contact sent without its last diagnosis and supplemented by a T carrying it; a bogus contact (N)
cancelled by a C. Every event of a key is later than the one before it (``endretTidspunkt``),
and no event is later than the last day of ``through``.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any

import numpy as np

from npr_pipeline.periods import month_end
from npr_pipeline.synth.cutoff import episodes_as_of, referral_as_of
from npr_pipeline.synth.model import Department, Episode, Patient, Referral, UnitYear
from npr_pipeline.synth.truth import department_attrs

Element = tuple[str, dict[str, str], list["Element"]]  # (name, attributes, children)
WRONG_VALUE_SHARE = 0.03  # contacts and patients first sent with a wrong value, then M
MISSING_DIAGNOSIS_SHARE = 0.03  # contacts with 2+ diagnoses first sent without the last, then T
BOGUS_SHARE = 0.01  # contacts followed by a bogus contact (N) that is cancelled (C)
CLOSING_TIME = time(23, 59)
CORRECTION_CAP = time(23, 0)


@dataclass(frozen=True, slots=True)
class Event:
    """One record event: its message kind, ``endretTidspunkt`` and the element sent."""

    kind: str
    moment: datetime
    element: Element


def _ts(moment: datetime) -> str:
    return moment.isoformat(timespec="seconds")


def _d(value: date | None) -> str | None:
    return value.isoformat() if value else None


def _record(
    name: str, key: dict[str, str], status: str, moment: datetime, **attrs: str | None
) -> Element:
    """A record element: key, event fields, then the attributes that have a value."""
    head = {**key, "hendelsesstatus": status, "endretTidspunkt": _ts(moment)}
    return (name, head | {k: v for k, v in attrs.items() if v is not None}, [])


def _later(moment: datetime, rng: np.random.Generator) -> datetime:
    """A correction's time: 0-3 days and an hour after ``moment``, within its month."""
    cap = datetime.combine(month_end(moment.year, moment.month), CORRECTION_CAP)
    later = min(moment + timedelta(days=int(rng.integers(0, 4)), hours=1), cap)
    return later if later > moment else moment + timedelta(minutes=1)


# -- contacts ------------------------------------------------------------------------------------


def _kontakt(patient: Patient, e: Episode, status: str, moment: datetime, **change: Any) -> Element:
    """A contact as sent; ``change`` overrides its id, diagnoses or an attribute."""
    name, attrs, _ = _record(
        "Kontakt",
        {"kontaktID": change.pop("kontaktID", e.episode_id)},
        status,
        moment,
        pasientNr=patient.patient_nr,
        reshID=e.resh,
        fagomrade=e.fagomrade,
        omsorgsniva=e.care_level,
        innmateHast=e.urgency,
        kontaktType=e.contact_type,
        debitor=e.debitor,
        komNrHjem=patient.komnr,
        innDatoTid=_ts(e.start),
        utDatoTid=_ts(e.end),
        henvisningsperiodeID=e.referral_id,
    )
    diagnoses = change.pop("diagnoses", e.diagnoses)
    children: list[Element] = [_diagnose(i, code) for i, code in enumerate(diagnoses, start=1)]
    children += [
        ("Prosedyre", {"prosedyreNr": str(i), "kodeNr": code, "kodeverk": system}, [])
        for i, (code, system) in enumerate(e.procedures, start=1)
    ]
    return (name, attrs | change, children)


def _diagnose(number: int, code: str) -> Element:
    return ("Diagnose", {"tilstNr": str(number), "kodeNr": code, "kodeverk": "D"}, [])


def _contact_events(patient: Patient, e: Episode, rng: np.random.Generator) -> Iterator[Event]:
    """A contact's N, and at times its correction (M or T) or a bogus twin (N then C)."""
    u = rng.random()
    if u < WRONG_VALUE_SHARE:
        wrong = {"1": "2", "2": "3"}.get(e.contact_type, "1")
        yield Event("kontakt", e.end, _kontakt(patient, e, "N", e.end, kontaktType=wrong))
        later = _later(e.end, rng)
        yield Event("kontakt", later, _kontakt(patient, e, "M", later))
    elif u < WRONG_VALUE_SHARE + MISSING_DIAGNOSIS_SHARE and len(e.diagnoses) > 1:
        first = _kontakt(patient, e, "N", e.end, diagnoses=e.diagnoses[:-1])
        yield Event("kontakt", e.end, first)
        later = _later(e.end, rng)
        name, attrs, _ = _record(
            "Kontakt", {"kontaktID": e.episode_id}, "T", later, pasientNr=patient.patient_nr
        )
        last = _diagnose(len(e.diagnoses), e.diagnoses[-1])
        yield Event("kontakt", later, (name, attrs, [last]))
    else:
        yield Event("kontakt", e.end, _kontakt(patient, e, "N", e.end))
    if rng.random() < BOGUS_SHARE:
        bogus_id = f"{e.episode_id}-F"
        yield Event("kontakt", e.end, _kontakt(patient, e, "N", e.end, kontaktID=bogus_id))
        later = _later(e.end, rng)
        cancel = _record(
            "Kontakt", {"kontaktID": bogus_id}, "C", later, pasientNr=patient.patient_nr
        )
        yield Event("kontakt", later, cancel)


# -- referral periods ----------------------------------------------------------------------------


def _referral_attrs(view: Referral) -> dict[str, str | None]:
    return {
        "reshID": view.resh,
        "fagomrade": view.fagomrade,
        "mottattDato": _d(view.received),
        "ansiennitetsdato": _d(view.seniority),
        "vurderingsdato": _d(view.assessed),
        "prioritet": view.priority,
        "fristStartHelsehjelp": _d(view.deadline),
        "tjenestestart": _d(view.care_start),
        "avviklingsdato": _d(view.ended),
        "avviklingskode": view.end_code,
    }


def _postponements(view: Referral) -> dict[str, Element]:
    """The view's ``Utsettelse`` children by their child key (the start date)."""
    found = {}
    for p in view.postponements:
        attrs = {"utsettelseskode": p.code, "utsettelsesdato": p.start.isoformat()}
        if p.end:
            attrs["utsettelseSluttdato"] = p.end.isoformat()
        found[p.start.isoformat()] = ("Utsettelse", attrs, [])
    return found


def _referral_events(
    patient: Patient, referral: Referral, first_day: date, last_day: date
) -> Iterator[Event]:
    """N with the view on its first day, then a T with what changed on each day it changes."""
    days = {referral.received, referral.assessed, referral.ended}
    for p in referral.postponements:
        days |= {p.start, p.end}
    start = max(referral.received, first_day)
    changes = sorted(d for d in days if d is not None and start < d <= last_day)
    key = {"henvisningsperiodeID": referral.referral_id}
    before: tuple[dict, dict] | None = None
    for day in ([start] if start <= last_day else []) + changes:
        view = referral_as_of(referral, day)
        assert view is not None  # every day listed is on or after the day it was received
        attrs, children = _referral_attrs(view), _postponements(view)
        moment = datetime.combine(day, time(8, 0))
        if before is None:
            name, head, _ = _record(
                "Henvisningsperiode", key, "N", moment, pasientNr=patient.patient_nr, **attrs
            )
            yield Event("henvisning", moment, (name, head, list(children.values())))
        else:
            changed = {k: v for k, v in attrs.items() if v != before[0][k]}
            added = [c for k, c in children.items() if before[1].get(k) != c]
            if changed or added:
                name, head, _ = _record(
                    "Henvisningsperiode", key, "T", moment, pasientNr=patient.patient_nr, **changed
                )
                yield Event("henvisning", moment, (name, head, added))
        before = (attrs, children)


# -- patients, identities, departments, closings ------------------------------------------------


def _department(dept: Department, moment: datetime) -> Event:
    attrs = department_attrs(dept)
    key = {"reshID": attrs.pop("reshID") or ""}
    return Event("enhet", moment, _record("Enhet", key, "N", moment, **attrs))


def _first_day(patient: Patient, year_start: date) -> date | None:
    days = [e.end.date() for e in patient.episodes]
    days += [max(r.received, year_start) for r in patient.referrals]
    return min(days, default=None)


def _patient_events(
    patient: Patient, day: date, rng: np.random.Generator, other_komnr: str
) -> Iterator[Event]:
    """The patient (at times first with another home municipality, then M) and its identity."""
    moment = datetime.combine(day, time(6, 0))
    key = {"pasientNr": patient.patient_nr}
    facts = {"kjonn": patient.sex, "fodselsar": str(patient.birth_year)}
    ident = _record("PasientIdent", {"pid": patient.patient_nr}, "N", moment, fid=patient.fnr,
                    fidType="1")  # fmt: skip
    yield Event("ident", moment, ident)
    status = "N"
    if rng.random() < WRONG_VALUE_SHARE and other_komnr != patient.komnr:
        wrong = _record("Pasient", key, status, moment, **facts, komNrHjem=other_komnr)
        yield Event("pasient", moment, wrong)
        status, moment = "M", _later(moment, rng)
    right = _record("Pasient", key, status, moment, **facts, komNrHjem=patient.komnr)
    yield Event("pasient", moment, right)


def _wait_end(referral: Referral) -> date:
    """The day the wait ended (care start or end, the earlier), or ``date.max`` while it lasts:
    the store's rule (``consolidated.counts_sql``), so a unit's closing matches its state."""
    ends = [d for d in (referral.care_start, referral.ended) if d is not None]
    return min(ends, default=date.max)


def control_totals(unit_year: UnitYear, first: date, last: date) -> dict[str, int]:
    """The closing's totals per ``postart`` (docs/messages/daily.md) over what the unit has
    reported by ``last`` (the monthly route's rule, :mod:`npr_pipeline.synth.cutoff`):
    1 contacts ended by ``last`` whose ``innDatoTid`` falls in [first, last]; 2 referral periods
    waiting at any time in it (received by ``last``, and neither started nor ended before
    ``first``: a wait ends at care start); 3 identities of the patients of those contacts and
    referral periods."""
    contacts = waiting = identities = 0
    for patient in unit_year.patients:
        counted = sum(
            first <= e.start.date() <= last for e in episodes_as_of(patient.episodes, last)
        )
        open_ = sum(r.received <= last and _wait_end(r) >= first for r in patient.referrals)
        contacts, waiting = contacts + counted, waiting + open_
        identities += bool(counted or open_)
    return {"1": contacts, "2": waiting, "3": identities}


def _closing(unit_year: UnitYear, year: int, month: int) -> Event:
    first, last = date(year, month, 1), month_end(year, month)
    totals = control_totals(unit_year, first, last)
    moment = datetime.combine(last, CLOSING_TIME)
    name, attrs, _ = _record(
        "Periodeavslutning",
        {"avslutningID": f"{year}-{month:02d}"},
        "N",
        moment,
        fraDatoPeriode=first.isoformat(),
        tilDatoPeriode=last.isoformat(),
    )
    children: list[Element] = [
        ("Kontrolltall", {"postart": postart, "antall": str(count)}, [])
        for postart, count in totals.items()
    ]
    return Event("avslutning", moment, (name, attrs, children))


def unit_events(unit_year: UnitYear, year: int, through: int, seed: int) -> list[Event]:
    """Every event of the unit from 1 January to the end of ``through``, by time."""
    rng = np.random.default_rng([seed, int(unit_year.unit.resh), 13])
    year_start, last_day = date(year, 1, 1), month_end(year, through)
    start = datetime.combine(year_start, time(0, 0))
    events = [_department(d, start) for d in unit_year.departments]
    for patient in unit_year.patients:
        day = _first_day(patient, year_start)
        if day is None or day > last_day:
            continue
        events += _patient_events(patient, day, rng, unit_year.unit.komnr)
        for referral in patient.referrals:
            events += _referral_events(patient, referral, year_start, last_day)
        for episode in patient.episodes:
            if episode.end.date() <= last_day:
                events += _contact_events(patient, episode, rng)
    events += [_closing(unit_year, year, month) for month in range(1, through + 1)]
    return sorted(events, key=lambda e: e.moment)
