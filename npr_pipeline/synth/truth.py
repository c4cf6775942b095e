"""The synthetic truth of one unit through a month, in the monthly lake tables' columns.

Both routes write this truth: the monthly cumulative files show it directly, the daily event
streams net out to it once every file through the month has been received. Tests compare
either route's result with these rows, so they have exactly the columns of
``store.lake.schema_of(<table>)`` without the lineage (``submission_id``, ``line``). The
``idents`` table carries fødselsnummer: its rows live in memory only, never written outside the
identity vault.
"""

from __future__ import annotations

from datetime import date

import pyarrow as pa

from npr_pipeline.periods import month_end
from npr_pipeline.store.lake import schema_of
from npr_pipeline.synth.cutoff import patient_as_of
from npr_pipeline.synth.model import Department, UnitYear

LINEAGE = ("submission_id", "line")
TABLE_NAMES = (
    "patients",
    "departments",
    "episodes",
    "diagnoses",
    "procedures",
    "referrals",
    "postponements",
    "idents",
)


def truth_schema(table: str) -> pa.Schema:
    """A monthly lake table's schema without its lineage columns."""
    schema = schema_of(table)
    return pa.schema([f for f in schema if f.name not in LINEAGE])


def department_attrs(dept: Department) -> dict[str, str | None]:
    """An ``Enhet`` as the 58.0.1 messages carry it, the 2026 attributes included."""
    return {
        "reshID": dept.resh,
        "navn": dept.name,
        "sektor": dept.sektor,
        "isfRefusjon": None,
        "nace": dept.nace,
        "enhetstype": dept.enhetstype,
        "avdeling": dept.avdeling,
    }


def truth_as_of(unit_year: UnitYear, year: int, cutoff: date) -> dict[str, list[dict]]:
    """Every record the unit has reported by ``cutoff``, per monthly lake table."""
    unit = unit_year.unit.resh
    rows: dict[str, list[dict]] = {name: [] for name in TABLE_NAMES}
    base = {"unit": unit, "year": year}
    rows["departments"] = [base | department_attrs(d) for d in unit_year.departments]
    for patient in unit_year.patients:
        view = patient_as_of(patient, cutoff)
        if view is None:
            continue
        referrals, episodes = view
        pnr = {**base, "pasientNr": patient.patient_nr}
        rows["patients"].append(
            pnr
            | {"kjonn": patient.sex, "fodselsar": patient.birth_year, "komNrHjem": patient.komnr}
        )
        rows["idents"].append(
            base | {"pid": patient.patient_nr, "fid": patient.fnr, "fidType": "1"}
        )
        for r in referrals:
            rid = pnr | {"henvisningsperiodeID": r.referral_id}
            rows["referrals"].append(
                rid
                | {
                    "reshID": r.resh,
                    "fagomrade": r.fagomrade,
                    "mottattDato": r.received,
                    "ansiennitetsdato": r.seniority,
                    "vurderingsdato": r.assessed,
                    "fristStartHelsehjelp": r.deadline,
                    "tjenestestart": r.care_start,
                    "avviklingsdato": r.ended,
                    "avviklingskode": r.end_code,
                    "prioritet": r.priority,
                }
            )
            rows["postponements"] += [
                rid
                | {
                    "utsettelseskode": p.code,
                    "utsettelsesdato": p.start,
                    "utsettelseSluttdato": p.end,
                }
                for p in r.postponements
            ]
        for e in episodes:
            eid = pnr | {"episodeID": e.episode_id}
            rows["episodes"].append(
                eid
                | {
                    "reshID": e.resh,
                    "fagomrade": e.fagomrade,
                    "omsorgsniva": e.care_level,
                    "innmateHast": e.urgency,
                    "kontaktType": e.contact_type,
                    "debitor": e.debitor,
                    "komNrHjem": patient.komnr,
                    "innDatoTid": e.start,
                    "utDatoTid": e.end,
                    "henvisningsperiodeID": e.referral_id,
                    "drg": None,
                    "drgKilde": None,
                }
            )
            rows["diagnoses"] += [
                eid | {"tilstNr": i, "kodeNr": code, "kodeverk": "D"}
                for i, code in enumerate(e.diagnoses, start=1)
            ]
            rows["procedures"] += [
                eid | {"seq": i, "kodeNr": code, "kodeverk": system, "dato": None}
                for i, (code, system) in enumerate(e.procedures, start=1)
            ]
    return rows


def truth_tables(unit_year: UnitYear, year: int, month: int) -> dict[str, pa.Table]:
    """:func:`truth_as_of` at the end of ``month`` as Arrow tables in the lake's types."""
    rows = truth_as_of(unit_year, year, month_end(year, month))
    return {
        name: pa.Table.from_pylist(rows[name], schema=truth_schema(name)) for name in TABLE_NAMES
    }
