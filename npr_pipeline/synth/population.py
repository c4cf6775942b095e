"""Synthetic people: home municipality, birth date, sex and a synthetic fødselsnummer.

A third of a unit's patients come from a regional pool shared by every unit of the region, so
the same person meets several units (kjernejournal and per-person extracts need that); the rest
are drawn fresh. Identity is the fødselsnummer itself, so two draws of one number are one person.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

import numpy as np

from npr_pipeline.identity import synthetic_fnr

SHARED_SHARE = 0.35
OUT_OF_REGION_SHARE = 0.03
ABROAD_SHARE = 0.003
ABROAD = "9000"


@dataclass(frozen=True)
class Catchment:
    """Municipalities by RHF, for drawing where patients live."""

    by_rhf: dict[str, tuple[str, ...]]

    def home(self, rng: np.random.Generator, rhf: str, unit_komnr: str) -> str:
        """A patient's municipality: mostly near the unit, ~3 % in another region."""
        u = rng.random()
        if u < ABROAD_SHARE:
            return ABROAD
        if u < ABROAD_SHARE + OUT_OF_REGION_SHARE:
            others = [r for r in self.by_rhf if r != rhf]
            region = others[int(rng.integers(len(others)))]
            options = self.by_rhf[region]
            return options[int(rng.integers(len(options)))]
        if rng.random() < 0.5:
            return unit_komnr
        options = self.by_rhf[rhf]
        return options[int(rng.integers(len(options)))]


def _birth_date(rng: np.random.Generator, year: int) -> date:
    """Ages skewed towards the old, as specialist care is; nobody born in ``year`` itself (about
    three in ten thousand draws), whose contacts that year could come before their birth and
    be refused by ``contact_before_birth``: they are born on the last day of the year before."""
    age_days = int(rng.beta(1.6, 1.3) * 95 * 365.25)
    return min(date(year, 7, 1) - timedelta(days=age_days), date(year - 1, 12, 31))


def draw_fnr(rng: np.random.Generator, year: int) -> str:
    """A synthetic fødselsnummer with valid check digits and a realistic birth date."""
    birth = _birth_date(rng, year)
    low, high = (0, 500) if birth.year < 2000 else (500, 1000)
    while True:
        fnr = synthetic_fnr(birth, int(rng.integers(low, high)))
        if fnr:
            return fnr


def shared_fnr(seed: int, region_index: int, member: int, year: int) -> str:
    """Member ``member`` of a region's shared pool: the same number for every unit."""
    return draw_fnr(np.random.default_rng([seed, 7919, region_index, member]), year)


def sex_of(fnr: str) -> str:
    """Code list 3101: the ninth digit is odd for men (1) and even for women (2)."""
    return "1" if int(fnr[8]) % 2 else "2"


def birth_year_of(fnr: str) -> int:
    """Birth year from the number, by the individual-number century rule."""
    yy, individual = int(fnr[4:6]), int(fnr[6:9])
    return 2000 + yy if individual >= 500 and yy < 40 else 1900 + yy
