"""Synthetic forløpsmeldinger (NPR_FORLOP) for one mental health or TSB unit and period.

Every patient of such a unit follows one national patient pathway from the same truth as the
activity message: it starts the day of the patient's first episode, is evaluated at every third
episode, and about a third of the pathways with more than one episode end the day the last
episode ended. Only registrations up to the period's end are reported. Units of other sectors
have no pathways (no file).
"""

from __future__ import annotations

from datetime import date

import numpy as np

from npr_pipeline.synth.model import Patient, UnitYear
from npr_pipeline.synth.typed import Period, Record, period_writer

SECTORS = ("mental_health", "tsb")
CHILDREN_FAGOMRADE = "310"
EVALUATE_EVERY = 3
END_SHARE = 0.3


def pathway_type(sector: str, fagomrade: str) -> str:
    """RB substance use treatment, PB children and young people, PV adults."""
    if sector == "tsb":
        return "RB"
    return "PB" if fagomrade == CHILDREN_FAGOMRADE else "PV"


def _events(patient: Patient, last_day: date, ends: bool) -> list[tuple[str, date]]:
    episodes = sorted(patient.episodes, key=lambda e: e.start)
    events = [("S", episodes[0].start.date())]
    events += [("E", e.start.date()) for e in episodes[EVALUATE_EVERY - 1 :: EVALUATE_EVERY]]
    if ends and len(episodes) > 1:
        events.append(("A", max(e.end for e in episodes).date()))
    return [(kind, day) for kind, day in events if day <= last_day]


def pathway_records(unit_year: UnitYear, period: Period, seed: int) -> list[Record]:
    """One ``Forlop`` per patient whose pathway started by the period's end."""
    unit = unit_year.unit
    if unit.sector not in SECTORS:
        return []
    rng = np.random.default_rng([seed, int(unit.resh), 3])
    records: list[Record] = []
    for patient in unit_year.patients:
        if not patient.episodes:
            continue
        events = _events(patient, period[1], bool(rng.random() < END_SHARE))
        if not events:
            continue
        first = min(patient.episodes, key=lambda e: e.start)
        attrs = {
            "forlopID": f"F-{patient.patient_nr}",
            "pasientNr": patient.patient_nr,
            "reshID": first.resh,
            "forlopstype": pathway_type(unit.sector, first.fagomrade),
        }
        children: list[Record] = [
            (
                "Forlopshendelse",
                {"hendelseNr": str(n), "hendelse": kind, "dato": day.isoformat()},
                [],
            )
            for n, (kind, day) in enumerate(events, start=1)
        ]
        records.append(("Forlop", attrs, children))
    return records


write_pathways = period_writer("forlop", pathway_records)
