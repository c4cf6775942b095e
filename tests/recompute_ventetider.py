"""Ventetider recomputed from the raw files by RULES.md and docs/deliveries/ventetider.md.

Each unit's current ord (:func:`tests.recompute_raw.current_files`), every referral period
measured as written there: scope (a deadline, no linked emergency, received by the snapshot),
the four measures, dates after the snapshot unknown, fristbrudd; statistics per group ``all``
and ``unit``."""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass
from datetime import date
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

from lxml import etree

from tests.recompute_raw import SNAPSHOT, WINDOW, current_files, day, local, without_identity

EMERGENCY = {"1", "2", "3"}  # innmateHast of a linked episode
NOT_ORDINARY = {"4", "21", "22"}  # utsettelseskode: the patient extended the wait
MEASURED = ("avviklet", "ventende")  # the measures with days and fristbrudd
LARGE = 100  # referral periods with a deadline: a unit whose current ord is edited


@dataclass(frozen=True)
class Wait:
    unit: str
    measure: str
    days: int | None = None
    breached: bool | None = None


def reach_the_rarer_rules(path: Path, each: int = 5) -> None:
    """Edit a current ord as a unit could have sent it, so that the rules the generator never
    reaches are reached: ``each`` referral periods with a deadline get a linked episode made
    acute (innmateHast 1: an emergency, out of scope), and ``each`` others lose their deadline
    (not on the waiting list). The file keeps its encoding and stays valid. A unit with fewer
    than ``LARGE`` such referrals is left alone: its cells stay above the suppression limit."""
    tree = etree.parse(str(path))
    referrals = {
        r.get("henvisningsperiodeID"): r
        for r in tree.iter("{*}Henvisningsperiode")
        if r.get("fristStartHelsehjelp")
    }
    if len(referrals) < LARGE:
        return
    linked = [e for e in tree.iter("{*}Episode") if e.get("henvisningsperiodeID") in referrals]
    acute = {e.get("henvisningsperiodeID"): e for e in linked}  # one episode per referral
    for episode in list(acute.values())[:each]:
        episode.set("innmateHast", "1")
    unlinked = set(referrals) - set(acute)
    for referral_id in sorted(unlinked)[:each]:
        del referrals[referral_id].attrib["fristStartHelsehjelp"]
    tree.write(str(path), encoding=tree.docinfo.encoding, xml_declaration=True)


def _known(when: date | None) -> date | None:
    """A date after the snapshot is unknown at the snapshot, whatever a later file says."""
    return when if when is not None and when <= SNAPSHOT else None


def _in_window(when: date | None) -> bool:
    return when is not None and WINDOW[0] <= when <= WINDOW[1]


def out_of_scope(referral: etree._Element, emergencies: set[str]) -> str | None:
    """Why a referral period is not a wait for planned care, if it is not."""
    if not referral.get("fristStartHelsehjelp"):
        return "no_deadline"
    if referral.get("henvisningsperiodeID") in emergencies:
        return "emergency"
    if day(referral.get("mottattDato")) > SNAPSHOT:
        return "received_after"
    return None


def _measure(unit: str, referral: etree._Element) -> Wait | None:
    """One referral period in scope by the rules: its measure, days and fristbrudd."""
    a = referral.attrib
    deadline = day(a["fristStartHelsehjelp"])
    seniority = day(a["ansiennitetsdato"])
    started, ended = _known(day(a.get("tjenestestart"))), _known(day(a.get("avviklingsdato")))
    if _in_window(started):
        extended = any(
            local(p) == "Utsettelse"
            and p.get("utsettelseskode") in NOT_ORDINARY
            and day(p.get("utsettelsesdato")) <= SNAPSHOT
            for p in referral
        )
        if extended:
            return Wait(unit, "avviklet_ikke_ordinaer")
        return Wait(unit, "avviklet", (started - seniority).days, started > deadline)
    if started is None and _in_window(ended):
        return Wait(unit, "avsluttet_annen_grunn")
    if seniority <= SNAPSHOT and started is None and ended is None:
        return Wait(unit, "ventende", (SNAPSHOT - seniority).days, deadline < SNAPSHOT)
    return None


def waits(unit: str, path: Path, left_out: set[str], counted: Counter[str]) -> list[Wait]:
    """Every measured referral period of one file but those of the patients in ``left_out``
    (no valid identity); ``counted`` counts those out of scope and those left out.

    Two streaming passes: a referral is an emergency when any episode of the submission
    linked to it is acute, wherever in the file that episode is (the docs: also one excluded
    by the quality rules)."""
    emergencies = {
        episode.get("henvisningsperiodeID")
        for _, episode in etree.iterparse(str(path), tag="{*}Episode")
        if episode.get("innmateHast") in EMERGENCY
    }
    found: list[Wait] = []
    for _, patient in etree.iterparse(str(path), tag="{*}Objektholder"):
        referrals = [c for c in patient if local(c) == "Henvisningsperiode"]
        if patient.get("pasientNr") in left_out:
            counted["without_identity"] += len(referrals)
            referrals = []
        for referral in referrals:
            why = out_of_scope(referral, emergencies)
            wait = None if why else _measure(unit, referral)
            if why:
                counted[why] += 1
            elif wait is not None:
                found.append(wait)
        patient.clear()
    return found


def _one_decimal(numerator: int, denominator: int) -> float:
    exact = Decimal(numerator) / Decimal(denominator)
    return float(exact.quantize(Decimal("0.1"), ROUND_HALF_UP))


def statistics(group: list[Wait], measure: str) -> tuple:
    """n, mean (one decimal), median, fristbrudd and its share (one decimal)."""
    n = len(group)
    if measure not in MEASURED:
        return (n, None, None, None, None)
    days = sorted(w.days for w in group)
    middle = n // 2
    median = days[middle] if n % 2 else (days[middle - 1] + days[middle]) / 2
    breached = sum(1 for w in group if w.breached)
    return (n, _one_decimal(sum(days), n), median, breached, _one_decimal(100 * breached, n))


def ventetider(year: Path, left_out: Counter[str]) -> dict[tuple[str, str, str], tuple]:
    groups: dict[tuple[str, str, str], list[Wait]] = defaultdict(list)
    unidentified = without_identity(year)
    for unit, path in current_files(year / "inbox").items():
        for wait in waits(unit, path, unidentified[unit], left_out):
            groups[("all", "all", wait.measure)].append(wait)
            groups[("unit", unit, wait.measure)].append(wait)
    return {key: statistics(group, key[2]) for key, group in groups.items()}
