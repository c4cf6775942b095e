"""Generate one unit's year of activity, deterministically from (seed, reshID).

Per unit, not per file: a month's cumulative file is then a view of the same year, so the
January data in the April file are the January data in the January file (as real EPJ extracts
are, corrections aside). The mix follows DOMAIN.md: about 10 % inpatient, 3 % day, 87 %
outpatient episodes; planned waits averaging about two months with a few per cent fristbrudd,
postponements and withdrawals; about 3 % of patients from another region.
"""

from __future__ import annotations

from collections.abc import Set as AbstractSet
from dataclasses import replace
from datetime import date, datetime, time, timedelta

import numpy as np

from npr_pipeline.periods import month_end
from npr_pipeline.synth.codes import draw_diagnoses, draw_procedure
from npr_pipeline.synth.model import (
    Department,
    Episode,
    Patient,
    Postponement,
    Referral,
    UnitInfo,
    UnitYear,
)
from npr_pipeline.synth.population import (
    SHARED_SHARE,
    Catchment,
    birth_year_of,
    draw_fnr,
    sex_of,
    shared_fnr,
)

EPISODES_PER_COURSE = 1.4
COURSES_PER_PATIENT = 1.3
SHARED_POOL_SIZE = 200_000
REGIONS = ("HSO", "HV", "HMN", "HN")
HOSPITAL_FAGOMRADER = ("110", "010", "050", "030", "150", "170", "200", "250", "300", "320")
PATIENT_POSTPONEMENT = ("4", "21", "22")
PRIVATE_PAYERS = ((0.08, "1"), (0.15, "70"), (0.55, "30"), (0.65, "32"))  # then 60


# The 2026 unit attributes: NACE (SN2025) of a behandlingssted by the unit's sector, the
# sektor of a somatic fagenhet (own choice: 620) and the avdeling codes of code list 3511.
SECTOR_NACE = {"somatic": "86.101", "mental_health": "86.102", "tsb": "86.103"}
SOMATIC_SEKTOR = "620"
AVDELINGER = ("10", "20", "30", "40", "90")
# An occasional invalid code, so the content checks of the 2026 code lists meet one: the last
# department of every INVALID_EVERY-th unit (by reshID) gets a code no list has.
INVALID_EVERY = 17
INVALID_NACE, INVALID_AVDELING = "86.999", "77"


def departments(
    unit: UnitInfo, rng: np.random.Generator, valid_fag: AbstractSet[str]
) -> list[Department]:
    """The unit's ``Enhet`` list: hospitals have several departments, small units one.

    The first is the unit itself as behandlingssted (``B``, with its NACE code), the others
    are fagenheter (``F``, with sektor and avdeling), as the 2026 message has them.
    """
    sektor = {"mental_health": "642", "tsb": "681"}.get(unit.sector)
    if unit.unit_type != "trust_site":
        found = [Department(unit.resh, unit.name, unit.fagomrade, sektor)]
    else:
        count = int(np.clip(round(np.log10(max(unit.size_weight, 1.0)) * 2), 1, 8))
        fags = [unit.fagomrade] + [f for f in HOSPITAL_FAGOMRADER if f != unit.fagomrade]
        fags = [f for f in fags if f in valid_fag][:count]
        found = [
            Department(_department_resh(unit.resh, k), f"{unit.name}, fagområde {fag}", fag, sektor)
            for k, fag in enumerate(fags)
        ]
    return _with_2026_attributes(unit, found)


def _with_2026_attributes(unit: UnitInfo, found: list[Department]) -> list[Department]:
    """Enhetstype, NACE and avdeling, drawn from the unit's own stream (the activity's stream
    stays as it was), and the occasional invalid code."""
    draw = np.random.default_rng([int(unit.resh), 3511])
    nace = SECTOR_NACE.get(unit.sector)
    out = [replace(found[0], enhetstype="B", nace=nace)]
    for dept in found[1:]:
        avdeling = AVDELINGER[int(draw.integers(len(AVDELINGER)))]
        sektor = dept.sektor or SOMATIC_SEKTOR
        out.append(replace(dept, enhetstype="F", sektor=sektor, avdeling=avdeling))
    if int(unit.resh) % INVALID_EVERY == 0:
        last = out[-1]
        wrong = {"avdeling": INVALID_AVDELING} if last.enhetstype == "F" else {"nace": INVALID_NACE}
        out[-1] = replace(last, **wrong)
    return out


def _department_resh(unit_resh: str, k: int) -> str:
    """The first department is the unit itself; the others get derived, unit-local ids."""
    if k == 0:
        return unit_resh
    return str(int(unit_resh) * 10 + k)[-9:]


def generate_unit_year(
    unit: UnitInfo,
    year: int,
    through_month: int,
    seed: int,
    episodes_per_month: float,
    catchment: Catchment,
    valid_fag: AbstractSet[str],
) -> UnitYear:
    """Patients, referral periods and episodes of one unit from 1 January to ``through_month``."""
    rng = np.random.default_rng([seed, int(unit.resh)])
    depts = departments(unit, rng, valid_fag)
    expected = episodes_per_month * through_month
    n_courses = max(1, int(rng.poisson(expected / EPISODES_PER_COURSE))) if expected else 0
    n_patients = max(1, int(n_courses / COURSES_PER_PATIENT))
    patients = _patients(rng, seed, unit, year, catchment, n_patients)
    builder = _CourseBuilder(
        unit, depts, rng, seed, date(year, 1, 1), month_end(year, through_month)
    )
    for _ in range(n_courses):
        builder.add(patients[int(rng.integers(len(patients)))])
    active = [p for p in patients if p.referrals or p.episodes]
    return UnitYear(unit, depts, active)


def _patients(
    rng: np.random.Generator, seed: int, unit: UnitInfo, year: int, catchment: Catchment, n: int
) -> list[Patient]:
    """Distinct people (by fødselsnummer) with local patient numbers."""
    region_index = REGIONS.index(unit.rhf) if unit.rhf in REGIONS else 0
    seen: set[str] = set()
    patients: list[Patient] = []
    for _ in range(n):
        if rng.random() < SHARED_SHARE:
            member = int(rng.integers(SHARED_POOL_SIZE))
            fnr = shared_fnr(seed, region_index, member, year)
        else:
            fnr = draw_fnr(rng, year)
        if fnr in seen:
            continue
        seen.add(fnr)
        patients.append(
            Patient(
                patient_nr=str(100000 + len(patients)),
                fnr=fnr,
                sex=sex_of(fnr),
                birth_year=birth_year_of(fnr),
                komnr=catchment.home(rng, unit.rhf, unit.komnr),
            )
        )
    return patients


def _debitor(u: float, financing: str) -> str:
    """Who pays (DOMAIN.md), from one uniform draw: a public unit's patients rarely pay
    themselves (30); a private provider's mostly do (30, 32) or their insurer (60), and a few
    are publicly paid (1 ordinary, 70 Helfo for a breached deadline)."""
    if financing != "private":
        return "1" if u < 0.98 else "30"
    for limit, code in PRIVATE_PAYERS:
        if u < limit:
            return code
    return "60"


def _at(day: date, minutes: int) -> datetime:
    return datetime.combine(day, time()) + timedelta(minutes=minutes)


class _CourseBuilder:
    """Adds one course of care (a referral and its contacts, or an emergency stay) to a patient."""

    def __init__(
        self,
        unit: UnitInfo,
        depts: list[Department],
        rng: np.random.Generator,
        seed: int,
        year_start: date,
        last_day: date,
    ) -> None:
        self.unit, self.depts, self.rng, self.seed = unit, depts, rng, seed
        self.year_start, self.last_day = year_start, last_day
        self.days = (last_day - year_start).days + 1
        self.episode_seq = 0
        self.referral_seq = 0
        self.inpatient = unit.unit_type == "trust_site" or unit.sector in (
            "rehabilitation",
            "tsb",
        )

    def add(self, patient: Patient) -> None:
        dept = self.depts[int(self.rng.integers(len(self.depts)))]
        diagnoses = draw_diagnoses(self.rng, dept.fagomrade, self.seed, 3)
        if self.unit.unit_type == "municipal_emergency":
            day = self.year_start + timedelta(days=int(self.rng.integers(self.days)))
            self._episode(patient, dept, diagnoses, day, "3", "1", "2", None)
        elif self.inpatient and self.rng.random() < 0.06:
            self._emergency(patient, dept, diagnoses)
        else:
            self._planned(patient, dept, diagnoses)

    def _emergency(self, patient: Patient, dept: Department, diagnoses: list[str]) -> None:
        day = self.year_start + timedelta(days=int(self.rng.integers(self.days)))
        stay_end = self._stay(patient, dept, diagnoses, day, urgency="1")
        self._follow_ups(patient, dept, diagnoses, stay_end, None)

    def _planned(self, patient: Patient, dept: Department, diagnoses: list[str]) -> None:
        rng = self.rng
        received = self.year_start + timedelta(days=int(rng.integers(-90, self.days)))
        seniority = received - timedelta(days=0 if rng.random() < 0.9 else int(rng.integers(1, 60)))
        assessed = received + timedelta(days=int(rng.integers(1, 11)))
        wait = max(int(rng.gamma(2.0, 30.0)), (assessed - seniority).days + 1)
        care_start = seniority + timedelta(days=wait)
        if rng.random() < 0.04:
            deadline = care_start - timedelta(days=int(rng.integers(1, 21)))
        else:
            deadline = care_start + timedelta(days=int(rng.integers(3, 60)))
        deadline = max(deadline, assessed + timedelta(days=1))
        referral = self._referral(dept, received, seniority, assessed, deadline)
        if rng.random() < 0.05:
            code = str(rng.choice(("1", "4", "5", "21", "22"), p=(0.3, 0.3, 0.1, 0.15, 0.15)))
            start = assessed + timedelta(days=int(rng.integers(1, max(2, wait // 2 + 1))))
            extra = int(rng.integers(14, 61))
            referral.postponements.append(Postponement(code, start, start + timedelta(extra)))
            care_start += timedelta(days=extra)
        if rng.random() < 0.08:
            referral.ended = seniority + timedelta(days=int(rng.integers(5, wait + 6)))
            referral.end_code = str(rng.choice(("2", "3", "4", "5")))
        else:
            referral.care_start = referral.ended = care_start
            referral.end_code = "1"
        if referral.ended < self.year_start:
            return
        patient.referrals.append(referral)
        if referral.care_start is not None and referral.care_start <= self.last_day:
            self._treatment(patient, dept, diagnoses, referral)

    def _referral(
        self, dept: Department, received: date, seniority: date, assessed: date, deadline: date
    ) -> Referral:
        self.referral_seq += 1
        return Referral(
            referral_id=f"H{self.unit.resh}-{self.referral_seq:06d}",
            resh=dept.resh,
            fagomrade=dept.fagomrade,
            received=received,
            seniority=seniority,
            assessed=assessed,
            deadline=deadline,
            care_start=None,
            ended=None,
            end_code=None,
            priority="1",
        )

    def _treatment(
        self, patient: Patient, dept: Department, diagnoses: list[str], referral: Referral
    ) -> None:
        day = referral.care_start
        u = self.rng.random()
        if self.inpatient and u < 0.06:
            end = self._stay(patient, dept, diagnoses, day, "4", referral.referral_id)
        else:
            level = "2" if u < 0.10 else "3"
            self._episode(patient, dept, diagnoses, day, level, "4", "1", referral.referral_id)
            end = day
        self._follow_ups(patient, dept, diagnoses, end, referral.referral_id)

    def _stay(
        self,
        patient: Patient,
        dept: Department,
        diagnoses: list[str],
        day: date,
        urgency: str,
        referral_id: str | None = None,
    ) -> date:
        """An inpatient stay; one in ten is two contiguous episodes (a transfer)."""
        los = int(self.rng.geometric(1 / 4.0))
        end = day + timedelta(days=los)
        if los >= 2 and self.rng.random() < 0.1:
            mid = day + timedelta(days=int(self.rng.integers(1, los)))
            other = self.depts[int(self.rng.integers(len(self.depts)))]
            self._episode(patient, dept, diagnoses, day, "1", urgency, "2", referral_id, mid)
            self._episode(patient, other, diagnoses, mid, "1", urgency, "2", referral_id, end)
        else:
            self._episode(patient, dept, diagnoses, day, "1", urgency, "2", referral_id, end)
        return end

    def _follow_ups(
        self,
        patient: Patient,
        dept: Department,
        diagnoses: list[str],
        after: date,
        referral_id: str | None,
    ) -> None:
        day = after
        for _ in range(int(self.rng.geometric(1 / 2.2)) - 1):
            day += timedelta(days=int(self.rng.integers(7, 61)))
            contact = "5" if self.rng.random() < 0.06 else "3"
            self._episode(patient, dept, diagnoses, day, "3", "4", contact, referral_id)

    def _episode(
        self,
        patient: Patient,
        dept: Department,
        diagnoses: list[str],
        day: date,
        level: str,
        urgency: str,
        contact: str,
        referral_id: str | None,
        end_day: date | None = None,
    ) -> None:
        if day < self.year_start or day > self.last_day:
            return
        rng = self.rng
        if level == "1":
            start = _at(day, int(rng.integers(0, 24 * 12)) * 5)
            end = _at(end_day or day, int(rng.integers(9 * 12, 16 * 12)) * 5)
            end = max(end, start + timedelta(hours=1))
        else:
            start = _at(day, int(rng.integers(8 * 12, 15 * 12)) * 5)
            minutes = int(rng.integers(2, 7)) * 60 if level == "2" else int(rng.integers(4, 13)) * 5
            end = start + timedelta(minutes=minutes)
        count = 1 + int(rng.random() < 0.4) + int(rng.random() < 0.15)
        procedures_p = {"1": 0.6, "2": 0.8}.get(level, 0.25)
        procedures = [draw_procedure(rng) for _ in range(int(rng.random() < procedures_p))]
        self.episode_seq += 1
        patient.episodes.append(
            Episode(
                episode_id=f"{self.unit.resh}-{self.episode_seq:07d}",
                resh=dept.resh,
                fagomrade=dept.fagomrade,
                care_level=level,
                urgency=urgency,
                contact_type=contact,
                debitor=_debitor(rng.random(), self.unit.financing),
                start=start,
                end=end,
                referral_id=referral_id,
                diagnoses=diagnoses[:count],
                procedures=procedures,
            )
        )
