"""The raw files of a synthetic year read with lxml alone, for the recomputations of the
deliveries (``tests/recompute_*.py``): nothing of ``npr_pipeline`` is used, so that a reading
the pipeline gets wrong is not shared by the check that should catch it."""

from __future__ import annotations

import csv
from datetime import date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from lxml import etree

WINDOW = (date(2026, 1, 1), date(2026, 4, 30))  # T1: its own four months
SNAPSHOT = WINDOW[1]
OSLO = ZoneInfo("Europe/Oslo")


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


W1 = (3, 7, 6, 1, 8, 9, 4, 5, 2)  # mod-11 weights of the first check digit
W2 = (5, 4, 3, 2, 7, 6, 5, 4, 3, 2)  # and of the second


def _check_digit(digits: list[int], weights: tuple[int, ...]) -> int:
    rest = 11 - sum(d * w for d, w in zip(digits, weights, strict=False)) % 11
    return 0 if rest == 11 else rest


def valid_number(fid: str | None, born_by: date, synthetic: bool = True) -> bool:
    """Mod-11 check digits and a real birth date no later than ``born_by`` (the ide's extraction
    day: nobody in it is born after it; a choice, the docs say only "fødselsdato"); D-, H- and,
    in a test HOME, synthetic numbers (month + 80): the rule ``fodselsnummer_valid``. Written
    out here rather than taken from python-stdnum, which the pipeline uses: a check sharing the
    pipeline's library would share its mistakes."""
    if fid is None or len(fid) != 11 or not fid.isdigit():
        return False
    d = [int(c) for c in fid]
    if d[9] != _check_digit(d[:9], W1) or d[10] != _check_digit(d[:10], W2):
        return False
    if int(fid[2:4]) > 80 and not synthetic:
        return False
    born = born_on(fid)
    return born is not None and born <= born_by


def born_on(fid: str) -> date | None:
    """The birth date an eleven-digit number carries (D-, H- and synthetic numbers too), by
    the individual number's century; None where it carries none."""
    born, month, yy, individual = int(fid[0:2]), int(fid[2:4]), int(fid[4:6]), int(fid[6:9])
    born -= 40 if born > 40 else 0
    month -= 80 if month > 80 else 40 if month > 40 else 0
    if individual <= 499:
        century = 1900
    elif individual <= 749 and yy >= 54:
        century = 1800
    elif yy <= 39:
        century = 2000
    elif individual >= 900:
        century = 1900
    else:
        return None
    try:
        return date(century + yy, month, born)
    except ValueError:
        return None


def synthetic_number(born: date, start: int = 500) -> str:
    """A synthetic fødselsnummer (month + 80) born on ``born`` (from 2000), valid check digits:
    the first individual number from ``start`` that has them."""
    for individual in range(start, 1000):
        first = f"{born.day:02d}{born.month + 80:02d}{born.year % 100:02d}{individual:03d}"
        d1 = _check_digit([int(c) for c in first], W1)
        d2 = _check_digit([int(c) for c in first + str(d1 % 10)], W2)
        if d1 < 10 and d2 < 10:
            return f"{first}{d1}{d2}"
    raise ValueError(f"no synthetic number for {born}")


def local_time(stamp: str) -> datetime:
    """A time without a zone is Oslo time; one with a zone is that instant in Oslo time."""
    moment = datetime.fromisoformat(stamp.replace("Z", "+00:00"))
    return moment.astimezone(OSLO).replace(tzinfo=None) if moment.tzinfo else moment


def contact_day(stamp: str | None) -> date | None:
    """The local day of a time (:func:`local_time`); None without one."""
    return local_time(stamp).date() if stamp else None


def idents(path: Path | None) -> tuple[dict[str, str], date]:
    """pasientNr -> fødselsnummer of a unit's current ide (a unit without one has none), and
    the ide's extraction day."""
    if path is None:
        return {}, WINDOW[1]
    extracted = date.fromisoformat(envelope(path)[2]["uttakDato"])
    pairs = etree.iterparse(str(path), tag="{*}PasientIdent")
    return {i.get("pid"): i.get("fid") for _, i in pairs}, extracted


def identity_problem(fid: str | None, born_by: date, first_contact: date | None) -> str | None:
    """Why the quality rules leave a patient out of every delivery with all their records, if
    they do: missing from the current ide (``patient_has_ident``), a fødselsnummer that fails
    (``fodselsnummer_valid``) or that is born after the patient's first contact
    (``contact_before_birth``), all errors (expectations/patients.yaml, idents.yaml); the last
    two are a number not valid for the patient (the kjernejournal manifest counts them so)."""
    if fid is None:
        return "person_missing_from_ide"
    if not valid_number(fid, born_by):
        return "person_invalid_number"
    if first_contact is not None and first_contact < born_on(fid):
        return "person_invalid_number"
    return None


def first_contact(holder: etree._Element) -> date | None:
    """The local day of a patient's (an Objektholder's) earliest episode."""
    days = [contact_day(e.get("innDatoTid")) for e in holder.iter("{*}Episode")]
    return min((d for d in days if d is not None), default=None)


def without_identity(year: Path) -> dict[str, set[str]]:
    """Per unit the patients of its current ord with an :func:`identity_problem` (synthetic
    numbers are valid in a test HOME)."""
    ides = current_files(year / "inbox", "NPR_IDE")
    left_out: dict[str, set[str]] = {}
    for unit, path in current_files(year / "inbox").items():
        numbers, extracted = idents(ides.get(unit))
        left_out[unit] = {
            patient
            for _, holder in etree.iterparse(str(path), tag="{*}Objektholder")
            if identity_problem(
                numbers.get(patient := holder.get("pasientNr")), extracted, first_contact(holder)
            )
        }
    return left_out


def registry(year: Path) -> dict[str, dict[str, str]]:
    """The year's registry rows (``registry.csv``) by RESH id."""
    with open(year / "registry.csv", encoding="utf-8") as handle:
        return {row["reshID"]: row for row in csv.DictReader(handle)}
