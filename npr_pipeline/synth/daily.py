"""``npr synth --route daily``: a unit's events (:mod:`npr_pipeline.synth.events`) as files.

Per unit and day, one file per message kind that has events, written at 23:30; per month one
closing file at 23:59 of its last day. ``lopenr`` rises per unit, kind and year in the order the
unit's system made the files. Delivery is imperfect on purpose, as intake must survive it:

- **late**: some files arrive one to three days after they were made, so files made later (with
  newer events and higher ``lopenr``) sort before them by name;
- **resent**: some days' events are sent again in a second file with a new ``lopenr``;
- **byte duplicates**: some files arrive twice, the same bytes under a second name.

A file's name is ``<reshID>_<delivered YYYYMMDDTHHMMSS>_<kind>_<lopenr>.xml``: intake reads the
inbox sorted by name, i.e. in delivery order per unit. Nothing is delivered after the month of
the events it carries, and every file of a month sorts before the month's closing, so the state
when a closing is read holds everything it counts. Element and attribute names come from
:mod:`npr_pipeline.synth.events`; envelope, namespaces and type codes from the message type
folders (:mod:`npr_pipeline.messages`).
"""

from __future__ import annotations

import re
import uuid
from collections import defaultdict
from dataclasses import dataclass, replace
from datetime import date, datetime, time, timedelta
from pathlib import Path
from xml.sax.saxutils import quoteattr

import numpy as np

from npr_pipeline.atomic import write_bytes
from npr_pipeline.envelope import NPR_PRODUCTION, Party, close_envelope, open_envelope
from npr_pipeline.messages import get
from npr_pipeline.periods import month_end
from npr_pipeline.synth.events import Element, Event
from npr_pipeline.synth.model import UnitInfo
from npr_pipeline.synth.writer import VENDORS

VERSION = "58.0.1"
KINDS = ("enhet", "pasient", "ident", "henvisning", "kontakt", "avslutning")
LATE_SHARE = 0.05
RESENT_SHARE = 0.03
BYTE_DUPLICATE_SHARE = 0.02
MADE_AT = time(23, 30)
_NEEDS_ESCAPE = re.compile(r"[&<>\"'\n\r\t]")
LATE_AT, RESENT_AT, DUPLICATE_AT = time(23, 40), time(23, 45), time(23, 50)


@dataclass(frozen=True)
class DailyFile:
    """One file to write: what it carries, when it was made and delivered, and its number."""

    kind: str
    made: datetime
    delivered: datetime
    records: tuple[Element, ...]
    lopenr: int = 0
    copy_of: DailyFile | None = None  # a byte duplicate of this file

    def name(self, resh: str) -> str:
        return f"{resh}_{self.delivered:%Y%m%dT%H%M%S}_{self.kind}_{self.lopenr:06d}.xml"


def _at(day: date, clock: time, kind: str) -> datetime:
    """``clock`` on ``day``, a minute later per kind so two kinds never share a second."""
    return datetime.combine(day, clock) + timedelta(minutes=KINDS.index(kind))


def _within_month(day: date, days: int) -> date:
    return min(day + timedelta(days=days), month_end(day.year, day.month))


def schedule(events: list[Event], rng: np.random.Generator) -> list[DailyFile]:
    """The files of one unit's events, numbered, with late, resent and duplicate deliveries."""
    by_file: dict[tuple[str, date], list[Element]] = defaultdict(list)
    for event in events:
        by_file[(event.kind, event.moment.date())].append(event.element)
    files: list[DailyFile] = []
    for (kind, day), records in sorted(by_file.items(), key=lambda item: item[0][1]):
        if kind == "avslutning":
            moment = datetime.combine(day, time(23, 59))
            files.append(DailyFile(kind, moment, moment, tuple(records)))
            continue
        made = _at(day, MADE_AT, kind)
        delivered = made
        if rng.random() < LATE_SHARE and _within_month(day, 1) > day:
            delivered = _at(_within_month(day, int(rng.integers(1, 4))), LATE_AT, kind)
        files.append(DailyFile(kind, made, delivered, tuple(records)))
        if rng.random() < RESENT_SHARE:
            again = _at(_within_month(day, int(rng.integers(0, 3))), RESENT_AT, kind)
            files.append(DailyFile(kind, again, again, tuple(records)))
    numbered: list[DailyFile] = []
    counters: dict[str, int] = defaultdict(int)
    for f in sorted(files, key=lambda f: (f.made, KINDS.index(f.kind))):
        counters[f.kind] += 1
        numbered.append(replace(f, lopenr=counters[f.kind]))
    for f in list(numbered):
        if f.kind != "avslutning" and rng.random() < BYTE_DUPLICATE_SHARE:
            day = _within_month(f.delivered.date(), int(rng.integers(0, 3)))
            numbered.append(replace(f, delivered=_at(day, DUPLICATE_AT, f.kind), copy_of=f))
    return numbered


def _quote(value: str) -> str:
    """An attribute value in double quotes; escaped only when it needs it (codes, dates and
    numbers never do, and quoting every value was a third of the writer's time)."""
    return quoteattr(value) if _NEEDS_ESCAPE.search(value) else f'"{value}"'


def _render(element: Element) -> str:
    name, attrs, children = element
    text = " ".join(f"{key}={_quote(value)}" for key, value in attrs.items())
    if not children:
        return f"<{name} {text}/>"
    return f"<{name} {text}>" + "".join(_render(c) for c in children) + f"</{name}>"


def render_file(unit: UnitInfo, daily: DailyFile, seed: int) -> bytes:
    """The MsgHead-wrapped message of one file (UTF-8)."""
    mtype = get(daily.kind, VERSION)
    sender = Party(unit.name, her=unit.her, orgnr=unit.orgnr, resh=unit.resh)
    vendor, epj, epj_version = VENDORS[int(unit.resh) % len(VENDORS)]
    msg_id = str(
        uuid.uuid5(uuid.NAMESPACE_URL, f"npr-synth/{seed}/daily/{unit.resh}/{daily.kind}/"
                   f"{daily.made.year}/{daily.lopenr}")
    )  # fmt: skip
    parts = [
        '<?xml version="1.0" encoding="UTF-8"?>\n',
        open_envelope(
            mtype.message_type,
            msg_id,
            daily.made,
            sender,
            NPR_PRODUCTION,
            display_name=mtype.display_name,
        ),
        f'<Melding xmlns="{mtype.namespace}" versjon="{VERSION}" meldingstype="E"'
        f' uttakTidspunkt="{daily.made.isoformat(timespec="seconds")}"'
        f" leverandor={quoteattr(vendor)} navnEPJ={quoteattr(epj)}"
        f' versjonEPJ="{epj_version}" versjonUt="npr-synth 1" lopenr="{daily.lopenr}"'
        f' lokalident="{msg_id}">\n'
        f'<Kontaktperson typeKontaktperson="1" navn={quoteattr("Teknisk kontakt " + unit.name)}'
        f' epost="npr-kontakt-{unit.resh}@example.no"/>\n'
        f"<Institusjon institusjonID={quoteattr(unit.orgnr)} navn={quoteattr(unit.name)}>\n",
        *(_render(record) + "\n" for record in daily.records),
        "</Institusjon></Melding>",
        close_envelope(),
    ]
    return "".join(parts).encode("utf-8")


def write_unit_files(
    inbox: Path, unit: UnitInfo, events: list[Event], seed: int
) -> tuple[list[Path], int]:
    """Write a unit's daily files into ``inbox``; returns the paths and their total size.

    Not fsynced (``durable=False``): the files are rebuilt from the seed, and a national run
    writes millions of them; each is still written atomically.
    """
    rng = np.random.default_rng([seed, int(unit.resh), 17])
    paths: list[Path] = []
    size = 0
    for daily in schedule(events, rng):
        path = inbox / daily.name(unit.resh)
        if daily.copy_of is not None:
            data = (inbox / daily.copy_of.name(unit.resh)).read_bytes()
        else:
            data = render_file(unit, daily, seed)
        write_bytes(path, data, durable=False)
        paths.append(path)
        size += len(data)
    return paths, size
