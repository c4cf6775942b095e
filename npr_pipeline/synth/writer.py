"""Streaming writers for the ord and ide submissions of one unit and month.

Text is written patient by patient into a buffered file (never a tree in memory), inside the
MsgHead envelope. Labelled defects are injected here, at write time, so each one is known
exactly: the file, the record and the kind.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import TextIO
from xml.sax.saxutils import quoteattr

from npr_pipeline.envelope import NPR_PRODUCTION, TEST_ORGNR, Party, close_envelope, open_envelope
from npr_pipeline.messages import get
from npr_pipeline.periods import month_end
from npr_pipeline.synth.cutoff import patient_as_of
from npr_pipeline.synth.model import Episode, Referral, UnitYear
from npr_pipeline.synth.truth import department_attrs

UNKNOWN_ICD10 = "K999"
VENDORS = (
    ("DIPS AS", "DIPS Arena", "24.1"),
    ("Epic Systems", "Helseplattformen", "2025.2"),
    ("CompuGroup Medical", "CGM Journal", "8.4"),
    ("Infodoc AS", "Plenario", "6.2"),
    ("Aspit AS", "System X", "12.0"),
)


@dataclass(frozen=True)
class FileSpec:
    """Everything about one submission except its records."""

    path: Path
    msg: str
    year: int
    month: int
    version: str
    lopenr: int
    encoding: str
    defect: str | None
    seed: int

    @property
    def cutoff(self) -> date:
        return month_end(self.year, self.month)

    @property
    def extracted(self) -> datetime:
        """Extraction two days after the month ends, at night."""
        return datetime.combine(self.cutoff + timedelta(days=2), datetime.min.time()).replace(
            hour=2
        )


def write_submission(spec: FileSpec, unit_year: UnitYear) -> tuple[int, list[tuple[str, str]]]:
    """Write one file; returns (episodes written, [(record, defect)]) for defects.csv."""
    sender, institution = _sender(unit_year, spec.defect)
    msg_type = get(spec.msg, spec.version).message_type
    msg_id = str(uuid.uuid5(uuid.NAMESPACE_URL, f"npr-synth/{spec.seed}/{spec.path.name}"))
    version = spec.version
    with open(spec.path, "w", encoding=spec.encoding, errors="xmlcharrefreplace") as out:
        out.write(f'<?xml version="1.0" encoding="{spec.encoding.upper()}"?>\n')
        out.write(open_envelope(msg_type, msg_id, spec.extracted, sender, NPR_PRODUCTION))
        _melding_open(out, spec, unit_year, version, msg_id, institution)
        if spec.msg == "ord":
            episodes, labels = _ord_body(out, spec, unit_year)
        else:
            episodes, labels = 0, _ide_body(out, spec, unit_year)
        out.write("</Institusjon></Melding>")
        out.write(close_envelope())
    if spec.defect in _FILE_DEFECTS:
        labels.append(("", spec.defect))
    if spec.defect == "truncated":
        _truncate(spec.path, spec.seed)
    return episodes, labels


_FILE_DEFECTS = ("wrong_version", "unknown_sender", "test_orgnr", "truncated")


def _sender(unit_year: UnitYear, defect: str | None) -> tuple[Party, str]:
    unit = unit_year.unit
    if defect == "unknown_sender":
        return Party(
            unit.name, her="8" + unit.her[-7:], orgnr="999999995", resh="9" + unit.resh[-8:]
        ), "999999995"
    if defect == "test_orgnr":
        return Party(unit.name, her=unit.her, orgnr=TEST_ORGNR, resh=unit.resh), TEST_ORGNR
    return Party(unit.name, her=unit.her, orgnr=unit.orgnr, resh=unit.resh), unit.orgnr


def _melding_open(
    out: TextIO, spec: FileSpec, unit_year: UnitYear, version: str, msg_id: str, orgnr: str
) -> None:
    unit = unit_year.unit
    vendor, epj, epj_version = VENDORS[int(unit.resh) % len(VENDORS)]
    out.write(
        f'<Melding xmlns="{get(spec.msg, version).namespace}" versjon="{version}" meldingstype="B"'
        f' fraDatoPeriode="{spec.year}-01-01" tilDatoPeriode="{spec.cutoff.isoformat()}"'
        f' uttakDato="{spec.extracted.date().isoformat()}"'
        f' uttakTidspunkt="{spec.extracted.isoformat()}"'
        f" leverandor={quoteattr(vendor)} navnEPJ={quoteattr(epj)}"
        f' versjonEPJ="{epj_version}" versjonUt="npr-synth 1" lopenr="{spec.lopenr}"'
        f' lokalident="{msg_id}">\n'
        f'<Kontaktperson typeKontaktperson="1" navn={quoteattr("Teknisk kontakt " + unit.name)}'
        f' epost="npr-kontakt-{unit.resh}@example.no"/>\n'
        f'<Institusjon institusjonID="{orgnr}" navn={quoteattr(unit.name)}>\n'
    )


def _ord_body(
    out: TextIO, spec: FileSpec, unit_year: UnitYear
) -> tuple[int, list[tuple[str, str]]]:
    for dept in unit_year.departments:
        attrs = department_attrs(dept)
        if spec.version == "57.0.1":  # the 2026 attributes are 58.0.1's
            attrs = {k: attrs[k] for k in ("reshID", "navn", "sektor")}
        extra = "".join(f" {k}={quoteattr(v)}" for k, v in attrs.items() if v is not None)
        out.write(f"<Enhet{extra}/>\n")
    injector = _Injector(spec.defect)
    count = 0
    for patient in unit_year.patients:
        view = patient_as_of(patient, spec.cutoff)
        if view is None:
            continue
        referrals, episodes = view
        parts = [
            f'<Objektholder pasientNr="{patient.patient_nr}">'
            f'<Pasient kjonn="{patient.sex}" fodselsar="{patient.birth_year}"'
            f' komNrHjem="{patient.komnr}"/>'
        ]
        parts.extend(_referral_xml(r) for r in referrals)
        parts.extend(_episode_xml(e, patient.komnr, injector) for e in episodes)
        parts.append("</Objektholder>\n")
        out.write("".join(parts))
        count += len(episodes)
    return count, injector.labels


def _ide_body(out: TextIO, spec: FileSpec, unit_year: UnitYear) -> list[tuple[str, str]]:
    labels: list[tuple[str, str]] = []
    for patient in unit_year.patients:
        if patient_as_of(patient, spec.cutoff) is None:
            continue
        if spec.defect == "patient_without_ident" and not labels:
            labels.append((patient.patient_nr, "patient_without_ident"))
            continue
        out.write(f'<PasientIdent pid="{patient.patient_nr}" fid="{patient.fnr}" fidType="1"/>\n')
    return labels


class _Injector:
    """Applies a record-level defect to the first episode it fits, once."""

    def __init__(self, defect: str | None) -> None:
        self.defect = defect
        self.labels: list[tuple[str, str]] = []
        self.first_id: str | None = None

    def episode_id(self, episode: Episode) -> str:
        if self.first_id is None:
            self.first_id = episode.episode_id
            if self.defect in ("schema_violation", "reversed_dates", "unknown_icd10"):
                self.labels.append((episode.episode_id, self.defect))
            return episode.episode_id
        if self.defect == "duplicate_episode_id" and not self.labels:
            self.labels.append((self.first_id, self.defect))
            return self.first_id
        return episode.episode_id

    def active(self, episode_id: str, defect: str) -> bool:
        return self.defect == defect and self.labels == [(episode_id, defect)]


def _d(value: date | None) -> str:
    return value.isoformat() if value else ""


def _referral_xml(r: Referral) -> str:
    attrs = [
        f'henvisningsperiodeID="{r.referral_id}" reshID="{r.resh}" fagomrade="{r.fagomrade}"',
        f'mottattDato="{_d(r.received)}" ansiennitetsdato="{_d(r.seniority)}"',
    ]
    for name, value in (
        ("vurderingsdato", r.assessed),
        ("fristStartHelsehjelp", r.deadline),
        ("tjenestestart", r.care_start),
        ("avviklingsdato", r.ended),
    ):
        if value:
            attrs.append(f'{name}="{value.isoformat()}"')
    if r.end_code:
        attrs.append(f'avviklingskode="{r.end_code}"')
    attrs.append(f'prioritet="{r.priority}"')
    head = "<Henvisningsperiode " + " ".join(attrs)
    if not r.postponements:
        return head + "/>"
    children = "".join(
        f'<Utsettelse utsettelseskode="{p.code}" utsettelsesdato="{_d(p.start)}"'
        + (f' utsettelseSluttdato="{_d(p.end)}"' if p.end else "")
        + "/>"
        for p in r.postponements
    )
    return f"{head}>{children}</Henvisningsperiode>"


def _episode_xml(e: Episode, komnr: str, injector: _Injector) -> str:
    episode_id = injector.episode_id(e)
    start, end, level = e.start, e.end, e.care_level
    diagnoses = e.diagnoses
    if injector.active(episode_id, "reversed_dates"):
        start, end = end + timedelta(days=1), start
    if injector.active(episode_id, "schema_violation"):
        level = "7"
    if injector.active(episode_id, "unknown_icd10"):
        diagnoses = [UNKNOWN_ICD10, *diagnoses[1:]]
    referral = f' henvisningsperiodeID="{e.referral_id}"' if e.referral_id else ""
    conditions = "".join(
        f'<Tilstand tilstNr="{i}"><Kode kodeNr="{code}" kodeverk="D"/></Tilstand>'
        for i, code in enumerate(diagnoses, start=1)
    )
    services = "".join(
        f'<Tjeneste><Tiltak><Prosedyre><Kode kodeNr="{code}" kodeverk="{system}"/>'
        f"</Prosedyre></Tiltak></Tjeneste>"
        for code, system in e.procedures
    )
    return (
        f'<Episode episodeID="{episode_id}" reshID="{e.resh}" fagomrade="{e.fagomrade}"'
        f' omsorgsniva="{level}" innmateHast="{e.urgency}" kontaktType="{e.contact_type}"'
        f' debitor="{e.debitor}" komNrHjem="{komnr}"'
        f' innDatoTid="{start.isoformat(timespec="seconds")}"'
        f' utDatoTid="{end.isoformat(timespec="seconds")}"{referral}>'
        f"{conditions}{services}</Episode>"
    )


def _truncate(path: Path, seed: int) -> None:
    """Cut the file somewhere in its second half, as an interrupted transfer would."""
    size = path.stat().st_size
    keep = size // 2 + (seed * 7919 + size) % max(1, size // 3)
    with open(path, "r+b") as fh:
        fh.truncate(keep)
