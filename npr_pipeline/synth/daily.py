"""Daily event messages for one unit and day, rendered from the same synthetic truth as the
monthly files: the first building block of ``npr synth --route daily`` (issue 13).

A record enters the daily stream on the day it becomes reportable by the monthly route's rule
(:mod:`npr_pipeline.synth.cutoff`): an episode when it has ended, a referral period when it is
received, a patient's identity with the first of these. Only ``N`` events so far: the later steps
of a wait (assessed, postponed, started, ended) as ``T`` events, corrections, cancellations,
duplicates and out-of-order delivery, and the closing messages are the next step. The element
and attribute names come from this module; the envelope, namespaces and type codes from the
message type folders (:mod:`npr_pipeline.messages`).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import date, datetime, time
from pathlib import Path
from xml.sax.saxutils import quoteattr

from npr_pipeline.envelope import NPR_PRODUCTION, Party, close_envelope, open_envelope
from npr_pipeline.messages import MessageType, get
from npr_pipeline.synth.model import Episode, Patient, Referral, UnitYear
from npr_pipeline.synth.writer import VENDORS

VERSION = "58.0.1"
KINDS = ("kontakt", "henvisning", "ident")
Element = tuple[str, dict[str, str], list["Element"]]  # (name, attributes, children)


@dataclass
class UnitDay:
    """The records one unit sends for one day, by message kind."""

    unit_year: UnitYear
    day: date
    records: dict[str, list[Element]] = field(default_factory=lambda: {k: [] for k in KINDS})


def _ts(moment: datetime) -> str:
    return moment.isoformat(timespec="seconds")


def _kontakt(patient: Patient, episode: Episode) -> Element:
    attrs = {
        "kontaktID": episode.episode_id,
        "hendelsesstatus": "N",
        "endretTidspunkt": _ts(episode.end),
        "pasientNr": patient.patient_nr,
        "reshID": episode.resh,
        "fagomrade": episode.fagomrade,
        "omsorgsniva": episode.care_level,
        "innmateHast": episode.urgency,
        "kontaktType": episode.contact_type,
        "debitor": episode.debitor,
        "komNrHjem": patient.komnr,
        "innDatoTid": _ts(episode.start),
        "utDatoTid": _ts(episode.end),
    }
    if episode.referral_id:
        attrs["henvisningsperiodeID"] = episode.referral_id
    children: list[Element] = [
        ("Diagnose", {"tilstNr": str(i), "kodeNr": code, "kodeverk": "D"}, [])
        for i, code in enumerate(episode.diagnoses, start=1)
    ]
    children += [
        ("Prosedyre", {"prosedyreNr": str(i), "kodeNr": code, "kodeverk": system}, [])
        for i, (code, system) in enumerate(episode.procedures, start=1)
    ]
    return ("Kontakt", attrs, children)


def _henvisning(patient: Patient, referral: Referral) -> Element:
    """A referral period as received: the later steps arrive as their own events."""
    attrs = {
        "henvisningsperiodeID": referral.referral_id,
        "hendelsesstatus": "N",
        "endretTidspunkt": _ts(datetime.combine(referral.received, time(8, 0))),
        "pasientNr": patient.patient_nr,
        "reshID": referral.resh,
        "fagomrade": referral.fagomrade,
        "mottattDato": referral.received.isoformat(),
        "ansiennitetsdato": referral.seniority.isoformat(),
    }
    return ("Henvisningsperiode", attrs, [])


def _first_reportable(patient: Patient) -> date | None:
    days = [e.end.date() for e in patient.episodes] + [r.received for r in patient.referrals]
    return min(days, default=None)


def unit_day(unit_year: UnitYear, day: date) -> UnitDay:
    """The N events of one unit and day."""
    found = UnitDay(unit_year, day)
    for patient in unit_year.patients:
        for referral in patient.referrals:
            if referral.received == day:
                found.records["henvisning"].append(_henvisning(patient, referral))
        for episode in patient.episodes:
            if episode.end.date() == day:
                found.records["kontakt"].append(_kontakt(patient, episode))
        if _first_reportable(patient) == day:
            attrs = {
                "pid": patient.patient_nr,
                "hendelsesstatus": "N",
                "endretTidspunkt": _ts(datetime.combine(day, time(0, 0))),
                "fid": patient.fnr,
                "fidType": "1",
            }
            found.records["ident"].append(("PasientIdent", attrs, []))
    return found


def _render(element: Element) -> str:
    name, attrs, children = element
    text = " ".join(f"{key}={quoteattr(value)}" for key, value in attrs.items())
    if not children:
        return f"<{name} {text}/>"
    return f"<{name} {text}>" + "".join(_render(c) for c in children) + f"</{name}>"


def write_unit_day(out: Path, day_events: UnitDay, lopenr: dict[str, int], seed: int) -> list[Path]:
    """One file per kind that has records; ``lopenr`` (per kind) is raised for each file."""
    unit = day_events.unit_year.unit
    sender = Party(unit.name, her=unit.her, orgnr=unit.orgnr, resh=unit.resh)
    vendor, epj, epj_version = VENDORS[int(unit.resh) % len(VENDORS)]
    written = []
    for kind, records in day_events.records.items():  # any message type folder's kind
        if not records:
            continue
        mtype: MessageType = get(kind, VERSION)
        lopenr[kind] = lopenr.get(kind, 0) + 1
        path = out / f"{unit.resh}_{kind}_{day_events.day.isoformat()}_{lopenr[kind]}.xml"
        msg_id = str(uuid.uuid5(uuid.NAMESPACE_URL, f"npr-synth/{seed}/daily/{path.name}"))
        written_at = datetime.combine(day_events.day, time(23, 30))
        with open(path, "w", encoding="utf-8") as fh:
            fh.write('<?xml version="1.0" encoding="UTF-8"?>\n')
            fh.write(
                open_envelope(
                    mtype.message_type,
                    msg_id,
                    written_at,
                    sender,
                    NPR_PRODUCTION,
                    display_name=mtype.display_name,
                )
            )
            fh.write(
                f'<Melding xmlns="{mtype.namespace}" versjon="{VERSION}" meldingstype="E"'
                f' uttakTidspunkt="{_ts(written_at)}" leverandor={quoteattr(vendor)}'
                f' navnEPJ={quoteattr(epj)} versjonEPJ="{epj_version}" versjonUt="npr-synth 1"'
                f' lopenr="{lopenr[kind]}" lokalident="{msg_id}">\n'
                f'<Kontaktperson typeKontaktperson="1"'
                f" navn={quoteattr('Teknisk kontakt ' + unit.name)}"
                f' epost="npr-kontakt-{unit.resh}@example.no"/>\n'
                f"<Institusjon institusjonID={quoteattr(unit.orgnr)}"
                f" navn={quoteattr(unit.name)}>\n"
            )
            for record in records:
                fh.write(_render(record) + "\n")
            fh.write("</Institusjon></Melding>")
            fh.write(close_envelope())
        written.append(path)
    return written
