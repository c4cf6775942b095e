"""A correction back in time, as a daily unit sends one (issue 13): an ``M`` for a contact of an
earlier month, with its main diagnosis changed, in the unit's next ``kontakt`` file.

Built from the daily files the synth wrote (the contact exactly as sent, so the ``M`` replaces
the whole record with one value changed) and written as a real file of the unit (its sender
identity from the registry, the next ``lopenr`` after those in the ledger), for the two-routes
test and the correction benchmark.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import pandas as pd
from lxml import etree

from npr_pipeline.synth.daily import DailyFile, render_file
from npr_pipeline.synth.events import Element
from npr_pipeline.synth.model import UnitInfo


@dataclass(frozen=True)
class Correction:
    """The file written and what it changes: unit, contact id, main diagnosis before and after."""

    path: Path
    unit: str
    contact: str
    before: str
    after: str


def _element(element: etree._Element) -> Element:
    """An lxml element as the synth's renderer takes it (name, attributes, children)."""
    return (etree.QName(element).localname, dict(element.attrib), [_element(c) for c in element])


def _main(record: Element) -> list[str]:
    return [c[1]["kodeNr"] for c in record[2] if c[1].get("tilstNr") == "1"]


def contact_sent_once(inbox: Path, month: str, wanted: set[tuple[str, str]] | None) -> tuple:
    """(unit, record, another main code): a contact that started in ``month`` (``YYYY-MM``),
    sent once as ``N`` and never corrected, with a main diagnosis (and among ``wanted``
    (unit, id) pairs, if given)."""
    events: dict[tuple[str, str], list[Element]] = {}
    codes = set()
    for path in sorted(inbox.glob("*_kontakt_*.xml")):
        for element in etree.parse(path).iter("{*}Kontakt"):
            record = _element(element)
            codes.update(_main(record))
            events.setdefault((path.name.split("_")[0], record[1]["kontaktID"]), []).append(record)
    for key, (record, *more) in sorted(events.items()):
        started = record[1].get("innDatoTid", "").startswith(month)
        if not more and started and _main(record) and (wanted is None or key in wanted):
            return key[0], record, sorted(codes - set(_main(record)))[0]
    raise LookupError(f"no contact of {month} sent once in {inbox}")


def write_correction(
    inbox: Path, month: str, sent: datetime, registry: pd.DataFrame, ledger: pd.DataFrame,
    out: Path, wanted: set[tuple[str, str]] | None = None,
) -> Correction:  # fmt: skip
    """Write the ``M`` for a contact of ``month`` into ``out``, made and delivered at ``sent``."""
    unit, (name, attrs, children), code = contact_sent_once(inbox, month, wanted)
    fixed = [(n, {**a, "kodeNr": code} if a.get("tilstNr") == "1" else a, c)
             for n, a, c in children]  # fmt: skip
    own = ledger[(ledger["unit"] == unit) & (ledger["message_type"] == "NPR_KONTAKT")]
    changed = {**attrs, "hendelsesstatus": "M", "endretTidspunkt": sent.isoformat()}
    daily = DailyFile("kontakt", sent, sent, ((name, changed, fixed),),
                      lopenr=int(own["lopenr"].max()) + 1)  # fmt: skip
    sender = UnitInfo.of(registry.set_index("reshID").loc[unit].to_dict() | {"reshID": unit})
    out.mkdir(parents=True, exist_ok=True)
    path = out / daily.name(unit)
    path.write_bytes(render_file(sender, daily, seed=1))
    return Correction(path, unit, attrs["kontaktID"], _main((name, attrs, children))[0], code)
