"""The raw files of a synthetic year read with lxml alone, for the recomputations of the
deliveries (``tests/recompute_*.py``): nothing of ``npr_pipeline`` is used, so that a reading
the pipeline gets wrong is not shared by the check that should catch it."""

from __future__ import annotations

from datetime import date
from pathlib import Path

from lxml import etree

WINDOW = (date(2026, 1, 1), date(2026, 4, 30))  # T1: its own four months
SNAPSHOT = WINDOW[1]


def local(element: etree._Element) -> str:
    return etree.QName(element).localname


def day(text: str | None) -> date | None:
    return date.fromisoformat(text) if text else None


def envelope(path: Path) -> tuple[str | None, str | None, dict[str, str]]:
    """The message type, the sender's RESH id and the Melding's attributes."""
    msg_type = unit = None
    in_sender = False
    for event, element in etree.iterparse(str(path), events=("start", "end")):
        name = local(element)
        if name == "Sender":
            in_sender = event == "start"
        elif event == "end" and name == "Type" and msg_type is None:
            msg_type = element.get("V")
        elif event == "end" and name == "Ident" and in_sender:
            kind = [c.get("V") for c in element if local(c) == "TypeId"]
            ids = [c.text for c in element if local(c) == "Id"]
            if kind == ["RSH"] and ids:
                unit = (ids[0] or "").strip()
        elif event == "start" and name == "Melding":
            return msg_type, unit, dict(element.attrib)
    return msg_type, unit, {}


def current_files(inbox: Path, message_type: str = "NPR_ORD") -> dict[str, Path]:
    """Per unit its 2026 file of ``message_type`` (NPR_ORD or NPR_IDE) reaching the snapshot
    with the highest lopenr: the current submission of RULES.md's data coverage."""
    best: dict[str, tuple[int, Path]] = {}
    for path in sorted(inbox.glob("*.xml")):
        msg_type, unit, melding = envelope(path)
        if (
            msg_type != message_type
            or unit is None
            or not melding["fraDatoPeriode"].startswith("2026")
        ):
            continue
        lopenr = int(melding["lopenr"])
        if day(melding["tilDatoPeriode"]) >= SNAPSHOT and lopenr > best.get(unit, (-1, path))[0]:
            best[unit] = (lopenr, path)
    return {unit: path for unit, (_, path) in best.items()}
