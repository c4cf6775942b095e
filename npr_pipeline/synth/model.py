"""The synthetic activity of one unit: patients, referral periods and episodes.

Plain slotted dataclasses, not DataFrames: the writer streams them patient by patient, and a
month's cumulative file is a filtered view (:mod:`npr_pipeline.synth.cutoff`) of one year.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime

from npr_pipeline import reference


@dataclass(frozen=True, slots=True)
class UnitInfo:
    """What synth needs of a registry row."""

    resh: str
    orgnr: str
    her: str
    name: str
    unit_type: str
    rhf: str
    komnr: str
    sector: str
    fagomrade: str
    size_weight: float
    financing: str = "public"  # "private": a privately funded provider, mostly self-pay

    @classmethod
    def of(cls, row: Mapping[str, object], **overrides: object) -> UnitInfo:
        """The unit of a registry row (``reshID``, ``herID``, ... as in registry.csv): the one
        builder for the generator, the correction scenario and the tests. A provider without
        an RHF agreement draws its patients from the RHF where it lies."""
        weight = row.get("size_weight")  # 0.0: an idle private provider
        fields = {
            "resh": row["reshID"],
            "orgnr": row["orgnr"],
            "her": row["herID"],
            "name": row["name"],
            "unit_type": row.get("unit_type") or "trust_site",
            "rhf": row.get("rhf") or reference.home_rhf(str(row["komnr"])) or "HSO",
            "komnr": row["komnr"],
            "sector": row.get("sector") or "somatic",
            "fagomrade": row.get("fagomrade") or "050",
            "size_weight": float(weight) if weight not in (None, "") else 1.0,  # type: ignore[arg-type]
            "financing": row.get("financing") or "public",
        }
        return cls(**(fields | overrides))  # type: ignore[arg-type]


@dataclass(frozen=True, slots=True)
class Department:
    """An ``Enhet`` of the message: the department that is responsible for the care."""

    resh: str
    name: str
    fagomrade: str
    sektor: str | None
    # the 2026 attributes (58.0.1): B behandlingssted (with NACE) or F fagenhet (with avdeling)
    enhetstype: str | None = None
    nace: str | None = None
    avdeling: str | None = None


@dataclass(slots=True)
class Postponement:
    """An ``Utsettelse``: code 4/21/22 are the patient's own choice, 1/3/5 are not."""

    code: str
    start: date
    end: date | None


@dataclass(slots=True)
class Referral:
    """A ``Henvisningsperiode``: one wait for planned care."""

    referral_id: str
    resh: str
    fagomrade: str
    received: date
    seniority: date
    assessed: date | None
    deadline: date | None
    care_start: date | None
    ended: date | None
    end_code: str | None
    priority: str
    postponements: list[Postponement] = field(default_factory=list)


@dataclass(slots=True)
class Episode:
    """An ``Episode``: one contact or one inpatient episode."""

    episode_id: str
    resh: str
    fagomrade: str
    care_level: str
    urgency: str
    contact_type: str
    debitor: str
    start: datetime
    end: datetime
    referral_id: str | None
    diagnoses: list[str]
    procedures: list[tuple[str, str]]


@dataclass(slots=True)
class Patient:
    """An ``Objektholder`` with its ``Pasient`` and the person's identity for the ide message."""

    patient_nr: str
    fnr: str
    sex: str
    birth_year: int
    komnr: str
    referrals: list[Referral] = field(default_factory=list)
    episodes: list[Episode] = field(default_factory=list)


@dataclass(slots=True)
class UnitYear:
    """All activity of one unit from 1 January to the last generated month."""

    unit: UnitInfo
    departments: list[Department]
    patients: list[Patient]
