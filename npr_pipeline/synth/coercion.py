"""Synthetic decisions on compulsory mental health care (XPR_VTK) for one unit and period.

From the same truth as the activity message: about a quarter of the inpatient stays at a mental
health unit begin with a decision of compulsory observation or compulsory care, made the day the
stay began and applying until it ended; some of those stays also get a decision on treatment
without consent. Only decisions made within the period are reported; other units have none.
"""

from __future__ import annotations

import numpy as np

from npr_pipeline.synth.model import Episode, UnitYear
from npr_pipeline.synth.typed import Period, Record, period_writer

SECTOR = "mental_health"
INPATIENT = "1"
DECISION_SHARE = 0.25
TREATMENT_SHARE = 0.3
ADMISSION_TYPES = ("01", "02")  # compulsory observation, compulsory care with a stay
TREATMENT_TYPE = "04"  # treatment without consent


def _decision(number: int, pasient_nr: str, episode: Episode, kind: str) -> Record:
    day = episode.start.date().isoformat()
    attrs = {
        "vedtakID": f"V-{episode.episode_id}-{number}",
        "pasientNr": pasient_nr,
        "reshID": episode.resh,
        "vedtakstype": kind,
        "vedtaksdato": day,
        "gyldigFra": day,
        "gyldigTil": episode.end.date().isoformat(),
    }
    return ("Vedtak", attrs, [])


def decision_records(unit_year: UnitYear, period: Period, seed: int) -> list[Record]:
    """The ``Vedtak`` elements of decisions made within the period."""
    unit = unit_year.unit
    if unit.sector != SECTOR:
        return []
    rng = np.random.default_rng([seed, int(unit.resh), 7])
    records: list[Record] = []
    for patient in unit_year.patients:
        for episode in patient.episodes:
            if episode.care_level != INPATIENT or rng.random() >= DECISION_SHARE:
                continue
            if not period[0] <= episode.start.date() <= period[1]:
                continue
            kind = ADMISSION_TYPES[int(rng.integers(len(ADMISSION_TYPES)))]
            records.append(_decision(1, patient.patient_nr, episode, kind))
            if rng.random() < TREATMENT_SHARE:
                records.append(_decision(2, patient.patient_nr, episode, TREATMENT_TYPE))
    return records


write_decisions = period_writer("vtk", decision_records)
