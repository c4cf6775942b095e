"""Kjernejournal recomputed from the raw files by RULES.md and docs/deliveries/kjernejournal.md.

Each unit's current ord and ide (:func:`tests.recompute_raw.current_files`): the person is the
ide's ``fid`` for the ord's ``pasientNr``; patients whose number fails its check digits or who
are missing from the ide are left out, then indirect contacts, the exclusion list and episodes
ending after the period; the rest collapse into one row per person, place and start day. The
rows hold the fødselsnummer: print them only through :func:`masked`."""

from __future__ import annotations

import csv
import json
from collections import Counter, defaultdict
from datetime import date, datetime, timedelta
from pathlib import Path

import pyarrow.parquet as pq
from lxml import etree

from tests.recompute_raw import (
    WINDOW,
    contact_day,
    current_files,
    envelope,
    first_contact,
    identity_problem,
    idents,
    registry,
    synthetic_number,
)

EXCLUSIONS = Path(__file__).resolve().parents[1] / "data/reference/kjernejournal_exclusions.csv"
INDIRECT = "5"  # kontaktType: phone or letter without the patient present
PRIVATE_DEBITOR = {"30", "32", "60"}  # the patient or an insurer pays
CARE_LEVELS = ("1", "2", "3", "8")  # omsorgsniva, lowest first: the row's care level
LARGE = 1000  # episodes in a unit's current ord: a unit whose current files are edited
EXCLUDED_FAGOMRADE = "360"  # TSB, on the exclusion list
EXCLUDED_DEPARTMENT = "7340475"  # Olafiaklinikken, on the exclusion list
RARE = (
    "exclusion_fagomrade",
    "exclusion_department",
    "indirect",
    "person_invalid_number",
    "person_missing_from_ide",
)
DAYS = ("contact_day", "first_date", "last_date")  # timestamps in the Parquet file

Row = tuple  # fodselsnummer, institution, name, ownership, department, day, first, last, level, n


def _episodes(tree: etree._ElementTree) -> list[etree._Element]:
    return list(tree.iter("{*}Episode"))


def _plain(episode: etree._Element) -> bool:
    """A direct contact inside the window, off the exclusion list: one an edit can move out."""
    a = episode.attrib
    start, end = contact_day(a.get("innDatoTid")), contact_day(a.get("utDatoTid"))
    return (
        a.get("kontaktType") != INDIRECT
        and a.get("fagomrade") != EXCLUDED_FAGOMRADE
        and a.get("reshID") != EXCLUDED_DEPARTMENT
        and start is not None
        and WINDOW[0] <= start
        and (end or start) <= WINDOW[1]
    )


def reach_the_rarer_rules(path: Path, each: int = 3) -> None:
    """Edit a current ord as a unit could have sent it, so that the exclusion list is reached:
    ``each`` direct contacts get fagområde 360 (TSB) and ``each`` others department 7340475
    (Olafiaklinikken; an unknown department is only a warning). Both codes are valid, so the
    file stays valid and no record is excluded by quality. A unit with fewer than ``LARGE``
    episodes is left alone: its cells stay above the suppression limit."""
    tree = etree.parse(str(path))
    episodes = _episodes(tree)
    if len(episodes) < LARGE:
        return
    plain = [e for e in episodes if _plain(e)]
    for episode in plain[:each]:
        episode.set("fagomrade", EXCLUDED_FAGOMRADE)
    for episode in plain[each : 2 * each]:
        episode.set("reshID", EXCLUDED_DEPARTMENT)
    tree.write(str(path), encoding=tree.docinfo.encoding, xml_declaration=True)


def _partner_ord(ide: Path) -> Path | None:
    """The current ord of the ide's unit, which names the patients the ide should cover."""
    _, unit, _ = envelope(ide)
    return current_files(ide.parent).get(unit or "")


def reach_the_rarer_ide_rules(path: Path, each: int = 2) -> None:
    """Edit a current ide so that persons without a valid identity number are reached: ``each``
    patients with direct contacts are dropped from it (missing from the ide: ``ide_mismatch``
    is a warning, ``patient_has_ident`` excludes the patient), ``each`` others get a wrong
    last check digit (``fodselsnummer_valid`` excludes them) and ``each`` more a valid number
    born the day after their first contact (``contact_before_birth`` excludes them). All are
    findings the quality
    layer excludes records for, not reasons to refuse the file. The patients chosen have no
    referral period: an excluded patient takes their referrals out of ventetider too. Only the
    ide of a unit whose current ord has at least ``LARGE`` episodes is edited."""
    ord_path = _partner_ord(path)
    if ord_path is None:
        return
    ord_tree = etree.parse(str(ord_path))
    if len(_episodes(ord_tree)) < LARGE:
        return
    patients = sorted(
        holder.get("pasientNr")
        for holder in ord_tree.iter("{*}Objektholder")
        if (found := list(holder.iter("{*}Episode")))
        and all(_plain(e) for e in found)
        and not list(holder.iter("{*}Henvisningsperiode"))
    )
    tree = etree.parse(str(path))
    idents = {i.get("pid"): i for i in tree.iter("{*}PasientIdent")}
    chosen = [pid for pid in patients if pid in idents][: 3 * each]
    for pid in chosen[:each]:
        idents[pid].getparent().remove(idents[pid])
    for pid in chosen[each : 2 * each]:
        fid = idents[pid].get("fid")
        idents[pid].set("fid", fid[:10] + str((int(fid[10]) + 1) % 10))
    holders = {h.get("pasientNr"): h for h in ord_tree.iter("{*}Objektholder")}
    for pid in chosen[2 * each :]:
        born = first_contact(holders[pid]) + timedelta(days=1)
        idents[pid].set("fid", synthetic_number(born))
    tree.write(str(path), encoding=tree.docinfo.encoding, xml_declaration=True)


def _registry(year: Path) -> dict[str, tuple[str, str]]:
    """Name and ownership by RESH id: what a row says of its institution."""
    return {resh: (row["name"], row["ownership"]) for resh, row in registry(year).items()}


def _exclusions() -> tuple[set[str], set[str]]:
    """The fagområder and reshIDs of the exclusion list (reference data, ``#`` comments)."""
    with open(EXCLUSIONS, encoding="utf-8") as handle:
        lines = [line for line in handle if not line.startswith("#")]
    fagomrader, units = set(), set()
    for row in csv.DictReader(lines):
        (fagomrader if row["kind"] == "fagomrade" else units).add(row["value"].strip())
    return fagomrader, units


def _left_out(episode: etree._Element, unit: str, excluded: tuple[set[str], set[str]]) -> str:
    """Why a contact of a person with a valid number is not delivered ('' when it is)."""
    a = episode.attrib
    if a.get("kontaktType") == INDIRECT:
        return "indirect"
    if a.get("fagomrade") in excluded[0]:
        return "exclusion_fagomrade"
    if a.get("reshID") in excluded[1] or unit in excluded[1]:
        return "exclusion_department"
    return ""


def _collapse(contacts: list[tuple], registry: dict[str, tuple[str, str]]) -> set[Row]:
    """One row per person, place and start day: first and last day, the lowest care level and
    the number of contacts."""
    groups: dict[tuple, list[tuple]] = defaultdict(list)
    for fid, unit, department, start, end, level, _ in contacts:
        groups[(fid, unit, department, start)].append((start, end or start, level))
    rows = set()
    for (fid, unit, department, start), found in groups.items():
        name, ownership = registry.get(unit, (None, None))
        level = min((c[2] for c in found), key=CARE_LEVELS.index)
        first, last = min(c[0] for c in found), max(c[1] for c in found)
        rows.add((fid, unit, name, ownership, department, start, first, last, level, len(found)))
    return rows


def kjernejournal(year: Path, seen: Counter[str]) -> tuple[set[Row], dict[str, int]]:
    """The 2026-T1 rows and the manifest's counts; ``seen`` counts each rule that left out a
    contact or a person."""
    registry, excluded = _registry(year), _exclusions()
    ides = current_files(year / "inbox", "NPR_IDE")
    counts: Counter[str] = Counter()
    contacts: list[tuple] = []
    for unit, path in current_files(year / "inbox").items():
        numbers, extracted = idents(ides.get(unit))
        for _, holder in etree.iterparse(str(path), tag="{*}Objektholder"):
            episodes = list(holder.iter("{*}Episode"))
            fid = numbers.get(holder.get("pasientNr"))
            counts["episodes_received"] += len(episodes)
            why = identity_problem(fid, extracted, first_contact(holder))
            if why:  # a patient without episodes counts too: persons are patient numbers
                seen[why] += 1
                continue
            # a later cumulative file holds months after the window: cut by the day they end
            within = [e for e in episodes if contact_day(e.get("utDatoTid")) <= WINDOW[1]]
            counts["episodes_after_quality"] += len(within)
            for episode in within:
                reason = _left_out(episode, unit, excluded)
                a = episode.attrib
                if reason:
                    seen[reason] += 1
                else:
                    start, end = contact_day(a["innDatoTid"]), contact_day(a.get("utDatoTid"))
                    paid = a.get("debitor") in PRIVATE_DEBITOR
                    contacts.append((fid, unit, a["reshID"], start, end, a["omsorgsniva"], paid))
            holder.clear()
    rows = _collapse(contacts, registry)
    counts["indirect_left_out"] = seen["indirect"]
    counts["exclusion_list_left_out"] = seen["exclusion_fagomrade"] + seen["exclusion_department"]
    counts["without_identity"] = 0  # the quality layer already left those patients out
    counts["persons_invalid_number"] = seen["person_invalid_number"]
    counts["persons_missing_from_ide"] = seen["person_missing_from_ide"]
    counts["persons_without_valid_identity"] = (
        counts["persons_invalid_number"] + counts["persons_missing_from_ide"]
    )
    counts["rows"], counts["persons"] = len(rows), len({r[0] for r in rows})
    for ownership in ("public", "private"):
        for financing, paid in (("public", False), ("private", True)):
            counts[f"contacts_{ownership}_units_{financing}_financing"] = sum(
                1 for c in contacts if registry[c[1]][1] == ownership and c[6] == paid
            )
    return rows, dict(counts)


def _day(value: datetime | date | None) -> date | datetime | None:
    """A timestamp at midnight is the day it stands for; any other time is kept, to differ."""
    if isinstance(value, datetime) and value.time() == datetime.min.time():
        return value.date()
    return value


def kjernejournal_delivered(home: Path) -> tuple[set[Row], dict[str, int]]:
    """The newest 2026-T1 version under ``HOME/restricted/kjernejournal``: its rows and its
    manifest's counts (period and version left aside), in the shapes of :func:`kjernejournal`."""
    folder = home / "restricted" / "kjernejournal" / "period=2026-T1"
    newest = sorted(folder.glob("v*.parquet"))[-1]
    columns = [
        "fodselsnummer",
        "institution",
        "institution_name",
        "ownership",
        "department",
        "contact_day",
        "first_date",
        "last_date",
        "care_level",
        "contacts",
    ]
    table = pq.read_table(newest, columns=columns).to_pydict()
    rows = {
        tuple(_day(v) if c in DAYS else v for c, v in zip(columns, r, strict=True))
        for r in zip(*(table[c] for c in columns), strict=True)
    }
    manifest = json.loads(newest.with_suffix(".manifest.json").read_text(encoding="utf-8"))
    counts = {k: int(v) for k, v in manifest["counts"].items() if k not in ("period", "version")}
    return rows, counts


def masked(rows: set[Row]) -> set[Row]:
    """The rows with each fødselsnummer cut to its first 6 digits: safe to print."""
    return {(r[0][:6] + "*****", *r[1:]) if r[0] else r for r in rows}
