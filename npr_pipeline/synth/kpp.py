"""Synthetic cost per patient (NPR_KPP) for one unit and period, from the same truth as its
activity: every episode that ended in the period gets its costs, by cost code, in kroner.

Amounts are exact decimals (øre), drawn per episode from the unit's seed, and ``total`` is the
sum of the episode's costs, as the register expects. The real cost codes (code list 8491) are
not public; the codes here have the register sample's form. The register's KPP schema has no
``Kontaktperson``, so neither has the file.
"""

from __future__ import annotations

from decimal import Decimal

import numpy as np

from npr_pipeline.synth.model import Episode, Patient, UnitYear
from npr_pipeline.synth.typed import Period, Record, holders, period_writer

COST_CODES = ("01A1", "02B1", "03C1", "04D1", "05E1")  # form of the register's sample (8491)
INPATIENT_BASE_ORE = 2_500_000  # a stay costs tens of thousands of kroner, a contact thousands
OUTPATIENT_BASE_ORE = 250_000
INPATIENT = "1"


def _costs(episode: Episode, rng: np.random.Generator) -> list[tuple[str, Decimal]]:
    base = INPATIENT_BASE_ORE if episode.care_level == INPATIENT else OUTPATIENT_BASE_ORE
    count = int(rng.integers(1, len(COST_CODES) + 1))
    codes = sorted(rng.choice(len(COST_CODES), size=count, replace=False))
    return [(COST_CODES[k], Decimal(int(rng.integers(base // 10, base))).scaleb(-2)) for k in codes]


def kpp_records(unit_year: UnitYear, period: Period, seed: int) -> list[Record]:
    """One ``Objektholder`` per patient with an episode that ended in the period."""
    rng = np.random.default_rng([seed, int(unit_year.unit.resh), 8491])

    def episode_costs(_patient: Patient, episode: Episode) -> Record:
        costs = _costs(episode, rng)
        total = sum((amount for _, amount in costs), Decimal("0.00"))
        lines: list[Record] = [
            ("TjenesteKPP", {"kostnadKode": code, "kostnad": str(amount)}, [])
            for code, amount in costs
        ]
        return ("EpisodeKPP", {"episodeID": episode.episode_id, "total": str(total)}, lines)

    return holders(unit_year, period, episode_costs)


write_kpp = period_writer("kpp", kpp_records, contact=False)
