"""Synthetic NPR-melding-TSB, the tertial TSB report, for one unit and period.

Every episode of a TSB unit that ended within the period (year to date, like the tertial's
NPR-melding) gets its TSB information: the patient's housing and main income (drawn per patient,
so every episode of a patient says the same), and one to three substances, the first the main
one. Other units have no TSB report.
"""

from __future__ import annotations

import zlib

import numpy as np

from npr_pipeline.synth.model import Episode, Patient, UnitYear
from npr_pipeline.synth.typed import Period, Record, holders, period_writer

SECTOR = "tsb"
HOUSING = ("1", "1", "1", "2", "3", "4", "9")  # codes drawn with repeats as weights
INCOME = ("1", "2", "2", "3", "4", "5", "9")
SUBSTANCES = ("01", "02", "03", "04", "05", "06", "07")
FREQUENCY = ("2", "3", "4")
INJECTED_SHARE = 0.1


def _substances(rng: np.random.Generator) -> list[Record]:
    count = int(rng.integers(1, 4))
    picked = rng.choice(len(SUBSTANCES), size=count, replace=False)
    return [
        (
            "Rusmiddel",
            {
                "rusmiddelNr": str(n),
                "rusmiddel": SUBSTANCES[int(k)],
                "hyppighet": FREQUENCY[int(rng.integers(len(FREQUENCY)))],
                "injisert": "1" if rng.random() < INJECTED_SHARE else "2",
            },
            [],
        )
        for n, k in enumerate(picked, start=1)
    ]


def tsb_records(unit_year: UnitYear, period: Period, seed: int) -> list[Record]:
    """One ``Objektholder`` per patient with a TSB episode that ended within the period."""
    resh = int(unit_year.unit.resh)
    if unit_year.unit.sector != SECTOR:
        return []
    rng = np.random.default_rng([seed, resh, 681])

    def episode_report(patient: Patient, episode: Episode) -> Record:
        person = np.random.default_rng([seed, resh, zlib.crc32(patient.patient_nr.encode())])
        attrs = {
            "episodeID": episode.episode_id,
            "reshID": episode.resh,
            "boforhold": HOUSING[int(person.integers(len(HOUSING)))],
            "hovedinntekt": INCOME[int(person.integers(len(INCOME)))],
        }
        return ("EpisodeTSB", attrs, _substances(rng))

    return holders(unit_year, period, episode_report)


write_tsb = period_writer("tsb", tsb_records)
