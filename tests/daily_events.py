"""Hand-made daily event files for the store and intake tests: real XML written by the synth's
renderer (:func:`npr_pipeline.synth.daily.render_file`), read by the real reader, appended
to real Delta tables under real committed batches."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime, time
from pathlib import Path

import pyarrow as pa

from npr_pipeline.home import Home
from npr_pipeline.intake.typed_reader import read_typed
from npr_pipeline.store.batches import begin_batch
from npr_pipeline.store.events import CONTEXT, append_events
from npr_pipeline.store.ledger import BatchCommit, write_records
from npr_pipeline.synth.daily import DailyFile, render_file
from npr_pipeline.synth.events import Element
from npr_pipeline.synth.model import UnitInfo

UNIT = "4201115"
YEAR = 2026


def unit_info(
    resh: str = UNIT,
    name: str = "Helse Eksempel HF",
    orgnr: str = "999888777",
    her: str = "8000001",
) -> UnitInfo:
    """A unit to send from (a registry row as the synth reads one)."""
    return UnitInfo.of({"reshID": resh, "name": name, "orgnr": orgnr, "herID": her,
                        "unit_type": "HF", "rhf": "Helse Sør-Øst", "komnr": "0301",
                        "sector": "somatikk"})  # fmt: skip


def kontakt(
    kid: str,
    status: str,
    at: str,
    patient: str = "P-1",
    diagnoses: Sequence[tuple[int, str]] = (),
    procedures: Sequence[tuple[int, str]] = (),
    **attrs: str,
) -> Element:
    """A ``Kontakt`` event; ``at`` is its ``endretTidspunkt``."""
    head = {"kontaktID": kid, "hendelsesstatus": status, "endretTidspunkt": at,
            "pasientNr": patient, **attrs}  # fmt: skip
    children: list[Element] = [
        ("Diagnose", {"tilstNr": str(n), "kodeNr": code, "kodeverk": "D"}, [])
        for n, code in diagnoses
    ]
    children += [
        ("Prosedyre", {"prosedyreNr": str(n), "kodeNr": code, "kodeverk": "K"}, [])
        for n, code in procedures
    ]
    return ("Kontakt", head, children)


def henvisning(hid: str, status: str, at: str, patient: str = "P-1", **attrs: str) -> Element:
    """A ``Henvisningsperiode`` event."""
    head = {"henvisningsperiodeID": hid, "hendelsesstatus": status, "endretTidspunkt": at,
            "pasientNr": patient, **attrs}  # fmt: skip
    return ("Henvisningsperiode", head, [])


def ident(pid: str, status: str, at: str, fid: str = "01010112345") -> Element:
    """A ``PasientIdent`` event."""
    attrs = {"pid": pid, "hendelsesstatus": status, "endretTidspunkt": at, "fid": fid,
             "fidType": "1"}  # fmt: skip
    return ("PasientIdent", attrs, [])


def avslutning(
    aid: str, status: str, at: str, period: tuple[str, str], totals: dict[str, int]
) -> Element:
    """A ``Periodeavslutning`` event with its control totals by postart."""
    attrs = {"avslutningID": aid, "hendelsesstatus": status, "endretTidspunkt": at,
             "fraDatoPeriode": period[0], "tilDatoPeriode": period[1]}  # fmt: skip
    totals_ = [("Kontrolltall", {"postart": k, "antall": str(n)}, []) for k, n in totals.items()]
    return ("Periodeavslutning", attrs, totals_)


def write_file(
    folder: Path, kind: str, lopenr: int, records: list[Element], sender: UnitInfo | None = None,
    day: date = date(YEAR, 3, 4),
) -> Path:  # fmt: skip
    """One daily file of ``kind`` with these records and this lopenr (by default from
    :func:`unit_info`'s unit)."""
    folder.mkdir(parents=True, exist_ok=True)
    sender = sender or unit_info()
    made = datetime.combine(day, time(23, 30))
    daily = DailyFile(kind, made, made, tuple(records), lopenr=lopenr)
    path = folder / daily.name(sender.resh)
    path.write_bytes(render_file(sender, daily, seed=1))
    return path


def read_events(path: Path, unit: str = UNIT) -> dict[str, pa.Table]:
    """The rows of one file with intake's context (the file name as its submission id)."""
    result = read_typed(path)
    assert result.ok, result.errors
    context = dict(zip(CONTEXT, (path.stem, unit, str(YEAR), result.attrs["lopenr"]),
                       strict=True))  # fmt: skip
    return read_typed(path, context).tables


def commit_batch(home: Home, files: list[Path]) -> int:
    """Append these files' events as one batch and commit the batch (no ledger rows)."""
    tables: dict[str, list[pa.Table]] = {}
    for path in files:
        for name, table in read_events(path).items():
            tables.setdefault(name, []).append(table)
    batch = begin_batch(home)
    versions = append_events(home, batch, {n: pa.concat_tables(t) for n, t in tables.items()})
    write_records(home, [], batch=BatchCommit(batch, len(files), versions))
    return batch
