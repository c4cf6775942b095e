"""One writer for every message type described as data (``npr_pipeline/messages/``).

The generators of the new types (:mod:`~npr_pipeline.synth.kpp`, ``pathways``, ``coercion``,
``tsb``) decide what to report; this module writes it the register's way: the MsgHead envelope
addressed to NPR, ``Melding`` in the type's namespace with the usual header attributes, an
optional technical contact, one ``Institusjon`` and the records, streamed with lxml's
incremental writer (escaping and namespaces by lxml, memory bounded by one record) into an
atomic file.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import date, datetime, time
from pathlib import Path

from lxml import etree

from npr_pipeline.atomic import atomic_open
from npr_pipeline.envelope import NPR_PRODUCTION, Party, close_envelope, open_envelope
from npr_pipeline.messages import MessageType, get
from npr_pipeline.synth.model import Episode, Patient, UnitInfo, UnitYear
from npr_pipeline.synth.writer import VENDORS

VERSION = "58.0.1"
WRITTEN_AT = time(22, 0)  # a period's message is extracted the evening of its last day
Record = tuple[str, dict[str, str], list["Record"]]  # (element, attributes, children)
Period = tuple[date, date]  # first and last day, both included
Records = Callable[[UnitYear, Period, int], list[Record]]  # (unit_year, period, seed)
PeriodWriter = Callable[[Path, UnitYear, Period, int, int], "Path | None"]


@dataclass(frozen=True)
class Batch:
    """What one message carries besides its records."""

    mtype: MessageType
    unit: UnitInfo
    lopenr: int
    written_at: datetime
    meldingstype: str
    period: Period | None = None  # fraDatoPeriode, tilDatoPeriode
    contact: bool = True  # a technical contact (Kontaktperson type 1), if the schema has one


def stamp(moment: datetime) -> str:
    """xs:dateTime to the second, Norwegian local time without a zone."""
    return moment.isoformat(timespec="seconds")


def _melding_attributes(batch: Batch, msg_id: str) -> dict[str, str]:
    vendor, epj, epj_version = VENDORS[int(batch.unit.resh) % len(VENDORS)]
    attrs = {"versjon": batch.mtype.version, "meldingstype": batch.meldingstype}
    if batch.period is not None:
        attrs["fraDatoPeriode"] = batch.period[0].isoformat()
        attrs["tilDatoPeriode"] = batch.period[1].isoformat()
        attrs["uttakDato"] = batch.written_at.date().isoformat()
    attrs |= {
        "uttakTidspunkt": stamp(batch.written_at),
        "leverandor": vendor,
        "navnEPJ": epj,
        "versjonEPJ": epj_version,
        "versjonUt": "npr-synth 1",
        "lopenr": str(batch.lopenr),
        "lokalident": msg_id,
    }
    return attrs


def _put(xf: etree.xmlfile, ns: str, record: Record) -> None:
    name, attrs, children = record
    with xf.element(f"{{{ns}}}{name}", attrs):
        for child in children:
            _put(xf, ns, child)


def write_message(path: Path, batch: Batch, records: Iterable[Record], seed: int) -> Path:
    """Write one MsgHead-wrapped message of ``batch.mtype`` with ``records`` to ``path``."""
    unit, mtype = batch.unit, batch.mtype
    msg_id = str(uuid.uuid5(uuid.NAMESPACE_URL, f"npr-synth/{seed}/{mtype.kind}/{path.name}"))
    sender = Party(unit.name, her=unit.her, orgnr=unit.orgnr, resh=unit.resh)
    head = open_envelope(
        mtype.message_type,
        msg_id,
        batch.written_at,
        sender,
        NPR_PRODUCTION,
        display_name=mtype.display_name,
    )
    ns = mtype.namespace
    with atomic_open(path, "wb") as fh:
        fh.write(b'<?xml version="1.0" encoding="UTF-8"?>\n' + head.encode("utf-8"))
        with etree.xmlfile(fh, encoding="utf-8") as xf:
            attrs = _melding_attributes(batch, msg_id)
            with xf.element(f"{{{ns}}}Melding", attrs, nsmap={None: ns}):
                if batch.contact:
                    contact = {
                        "typeKontaktperson": "1",
                        "navn": f"Teknisk kontakt {unit.name}",
                        "epost": f"npr-kontakt-{unit.resh}@example.no",
                    }
                    _put(xf, ns, ("Kontaktperson", contact, []))
                with xf.element(f"{{{ns}}}Institusjon", {"institusjonID": unit.orgnr}):
                    for record in records:
                        xf.write("\n")
                        _put(xf, ns, record)
        fh.write(close_envelope().encode("utf-8"))
    return path


def write_period(
    out: Path,
    kind: str,
    unit: UnitInfo,
    period: Period,
    records: list[Record],
    numbers: tuple[int, int],
    contact: bool = True,
) -> Path | None:
    """A unit's batch message (``B``) of ``kind`` for a period, or None when it has no records.

    ``numbers`` is (lopenr, seed). The file is named by unit, kind and period, so writing the
    same period again replaces it.
    """
    if not records:
        return None
    lopenr, seed = numbers
    written_at = datetime.combine(period[1], WRITTEN_AT)
    batch = Batch(get(kind, VERSION), unit, lopenr, written_at, "B", period, contact)
    name = f"{unit.resh}_{kind}_{period[0].isoformat()}_{period[1].isoformat()}.xml"
    return write_message(out / name, batch, records, seed)


def holders(
    unit_year: UnitYear, period: Period, episode: Callable[[Patient, Episode], Record]
) -> list[Record]:
    """One ``Objektholder`` per patient with an episode that ended within the period, holding
    ``episode(patient, e)`` for each such episode (the register's per-patient layout)."""
    records: list[Record] = []
    for patient in unit_year.patients:
        ended = [e for e in patient.episodes if period[0] <= e.end.date() <= period[1]]
        if ended:
            children = [episode(patient, e) for e in ended]
            records.append(("Objektholder", {"pasientNr": patient.patient_nr}, children))
    return records


def period_writer(kind: str, records: Records, contact: bool = True) -> PeriodWriter:
    """The writer of one type: ``(out, unit_year, period, lopenr, seed)`` to the unit's message
    of ``kind`` for the period, or None when ``records`` finds nothing to report."""

    def write(
        out: Path, unit_year: UnitYear, period: Period, lopenr: int, seed: int
    ) -> Path | None:
        found = records(unit_year, period, seed)
        return write_period(out, kind, unit_year.unit, period, found, (lopenr, seed), contact)

    write.__name__ = f"write_{kind}"
    return write
