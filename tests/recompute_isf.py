"""ISF and the guest-patient settlement recomputed from the raw files by RULES.md (ISF,
Gjestepasientoppgjør, Who pays) and docs/deliveries/isf.md and gjestepasient.md.

Each unit's current ord (:func:`tests.recompute_raw.current_files`): episodes ending after the
window cut, inpatient episodes joined into stays, every other episode a contact; a DRG (the
unit's official one, else the simplified table), points, refund and settlement amount in
``Decimal`` rounded half up per line; privately paid activity left out and counted. The
reference CSVs and the year's registry are read with ``csv``: nothing of ``npr_pipeline``."""

from __future__ import annotations

import csv
from collections import Counter, defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

import duckdb
from lxml import etree

from tests.recompute_raw import (
    WINDOW,
    current_files,
    local,
    local_time,
    registry,
    without_identity,
)

REFERENCE = Path(__file__).resolve().parents[1] / "data" / "reference"
DATA_YEAR = WINDOW[0].year
PERIOD = "2026-T1"
PRIVATE = {"30", "32", "60"}  # debitor: the patient (30, 32) or an insurer (60) pays
PSYCH_SEKTOR = {"641", "642", "651", "681"}
PSYCH_FAGOMRADE = {"310", "320", "360", "365", "370"}
ABROAD = "abroad"  # the region of the municipality list's kind=abroad rows
ORE = Decimal("0.01")
LARGE = 1000  # episodes: a unit whose current ord is edited
OFFICIAL_DRG = "238A"  # in the DRG table; the simplified grouper gives it only to M17 + procedure
HALF_ORE = ("310", "068O")  # a mental-health contact of 0.10 points: 98.425 kr, rounded up
UNLISTED_DRG = "999Z"  # an official grouper's DRG the DRG table does not list: no points
EDITS = (("debitor", "32"), ("debitor", "60"), ("komNrHjem", "0000"), ("komNrHjem", "9900"))
ISF_RARE = (
    "paid_by_32", "paid_by_60", "official_drg", "official_drg_unlisted", "half_ore",
    "without_identity",
)  # fmt: skip
"""The ``seen`` keys of rules the generator rarely or never reaches that :func:`isf` counts."""
GJESTEPASIENT_RARE = ("komNrHjem_0000", "komNrHjem_9900", "paid_privately", "no_treating_region")
"""And those :func:`gjestepasient` counts."""


@dataclass(frozen=True)
class Episode:
    unit: str
    patient: str
    id: str
    department: str
    fagomrade: str
    level: str  # 8 already read as 3
    debitor: str
    municipality: str
    start: datetime
    end: datetime
    main: str | None
    procedure: bool
    drg: str | None
    sektor: str | None


@dataclass(frozen=True)
class Line:
    """One priced stay or contact ending in the window, privately paid ones included."""

    unit: str
    kind: str
    first: Episode
    points: Decimal | None
    activity: str
    private: bool


def reach_the_rarer_rules(path: Path, each: int = 3) -> None:
    """Edit a current ord as a unit could have sent it, so that the rules the generator rarely or
    never reaches are reached: ``each`` outpatient contacts paid by the patient under the EU
    directive (debitor 32), ``each`` paid by an insurer (60), ``each`` of a patient with an
    invalid municipality (0000) and ``each`` living abroad (9900), and ``each`` inpatient and
    ``each`` outpatient episodes carrying an official grouper's DRG, and ``each`` mental-health
    contacts whose official DRG makes the refund end in half an øre (``HALF_ORE``: the rounding
    decides), and ``each`` contacts carrying an official DRG the DRG table does not list
    (``UNLISTED_DRG``: no points, no refund). Only ordinary (debitor 1) episodes ending in the
    window are edited, each once. The file keeps its encoding and stays valid. A unit with fewer
    than ``LARGE`` episodes is left alone: its figures stay."""
    tree = etree.parse(str(path))
    episodes = [
        e
        for e in tree.iter("{*}Episode")
        if e.get("debitor") == "1" and local_time(e.get("utDatoTid")).date() <= WINDOW[1]
    ]
    if len(episodes) < LARGE:
        return
    contacts = [e for e in episodes if e.get("omsorgsniva") != "1"]
    for number, (name, value) in enumerate(EDITS):
        for episode in contacts[number * each : (number + 1) * each]:
            episode.set(name, value)
    official = contacts[len(EDITS) * each : (len(EDITS) + 1) * each]
    official += [e for e in episodes if e.get("omsorgsniva") == "1"][:each]
    for episode in official:
        episode.set("drg", OFFICIAL_DRG)
        episode.set("drgKilde", "NPK")
    fagomrade, drg = HALF_ORE
    for episode in contacts[(len(EDITS) + 1) * each : (len(EDITS) + 2) * each]:
        episode.set("fagomrade", fagomrade)
        episode.set("drg", drg)
        episode.set("drgKilde", "NPK")
    for episode in contacts[(len(EDITS) + 2) * each : (len(EDITS) + 3) * each]:
        episode.set("drg", UNLISTED_DRG)
        episode.set("drgKilde", "NPK")
    tree.write(str(path), encoding=tree.docinfo.encoding, xml_declaration=True)


def _reference(name: str) -> list[dict[str, str]]:
    """A reference CSV without its ``#`` comment lines."""
    with open(REFERENCE / name, encoding="utf-8") as handle:
        return list(csv.DictReader(line for line in handle if not line.startswith("#")))


def _regions() -> dict[str, str]:
    """Municipality -> RHF through its county (or ``abroad``); a number not listed has none."""
    county = {row["county"]: row["rhf_code"] for row in _reference("counties.csv")}
    return {
        row["komnr"]: ABROAD if row["kind"] == "abroad" else county[row["county"]]
        for row in _reference("municipalities.csv")
    }


def _rates() -> dict[str, tuple[Decimal, Decimal, Decimal]]:
    """Activity kind -> unit price, refund share, settlement share of the data year."""
    return {
        row["activity"]: tuple(
            Decimal(row[c]) for c in ("unit_price_nok", "refund_share", "settlement_share")
        )
        for row in _reference("isf_rates.csv")
        if int(row["year"]) == DATA_YEAR
    }


def _drg_table() -> list[dict[str, str]]:
    """The rows of the newest ``valid_year`` not after the data year."""
    rows = _reference("drg_table.csv")
    newest = max(int(r["valid_year"]) for r in rows if int(r["valid_year"]) <= DATA_YEAR)
    return [r for r in rows if int(r["valid_year"]) == newest]


def simplified_drg(
    table: list[dict[str, str]], code: str | None, procedure: bool, level: str
) -> str:
    """The simplified grouper: same level and procedure flag, the longest matching code prefix,
    else the chapter range holding the first three characters, else ``*``."""
    rows = [
        r
        for r in table
        if r["procedure_flag"] == ("Y" if procedure else "N") and r["omsorgsniva"] == level
    ]
    code = (code or "").upper()
    matched = {r["icd10_chapter_or_prefix"]: r for r in rows}
    prefixes = [p for p in matched if p != "*" and "-" not in p and code.startswith(p)]
    if prefixes:
        return matched[max(prefixes, key=len)]["drg"]
    ranges = [p for p in matched if "-" in p and p.split("-")[0] <= code[:3] <= p.split("-")[1]]
    return matched[ranges[0] if code and ranges else "*"]["drg"]


def _episode(unit: str, patient: str, element: etree._Element, sektor: dict) -> Episode:
    """One episode with what grouping and paying need: main condition (Tilstand 1), whether it
    has a procedure, care level 8 read as 3."""
    a = element.attrib
    main = next(
        (
            code.get("kodeNr")
            for condition in element
            if local(condition) == "Tilstand" and condition.get("tilstNr") == "1"
            for code in condition
            if local(code) == "Kode"
        ),
        None,
    )
    return Episode(
        unit=unit,
        patient=patient,
        id=a["episodeID"],
        department=a["reshID"],
        fagomrade=a["fagomrade"],
        level="3" if a["omsorgsniva"] == "8" else a["omsorgsniva"],
        debitor=a["debitor"],
        municipality=a["komNrHjem"],
        start=local_time(a["innDatoTid"]),
        end=local_time(a["utDatoTid"]),
        main=main,
        procedure=any(True for _ in element.iter("{*}Prosedyre")),
        drg=a.get("drg") or None,
        sektor=sektor.get(a["reshID"]),
    )


def episodes(unit: str, path: Path, left_out: set[str]) -> list[Episode]:
    """The file's episodes ending by the window's last day (later ones are cut), but none of
    the patients in ``left_out`` (no valid identity: :func:`tests.recompute_raw.without_identity`);
    the Enheter come before the patients, so each department's sektor is known by then."""
    sektor: dict[str, str | None] = {}
    found: list[Episode] = []
    for _, element in etree.iterparse(str(path), tag=("{*}Enhet", "{*}Objektholder")):
        if local(element) == "Enhet":
            sektor[element.get("reshID")] = element.get("sektor")
            continue
        patient = element.get("pasientNr")
        for child in () if patient in left_out else element:
            if local(child) == "Episode":
                episode = _episode(unit, patient, child, sektor)
                if episode.end.date() <= WINDOW[1]:
                    found.append(episode)
        element.clear()
    return found


def activities(found: list[Episode]) -> list[tuple[str, list[Episode]]]:
    """Stays and contacts: inpatient episodes of one patient at the unit in admission order
    form one stay while the next is admitted by the day after the stay's discharge."""
    made: list[tuple[str, list[Episode]]] = []
    inpatient: dict[str, list[Episode]] = defaultdict(list)
    for episode in found:
        if episode.level == "1":
            inpatient[episode.patient].append(episode)
        else:
            made.append(("contact", [episode]))
    for patient_episodes in inpatient.values():
        stay: list[Episode] = []
        for episode in sorted(patient_episodes, key=lambda e: (e.start, e.id)):
            if stay and episode.start.date() > max(e.end for e in stay).date() + timedelta(1):
                made.append(("stay", stay))
                stay = []
            stay.append(episode)
        made.append(("stay", stay))
    return made


def _ends_in_window(when: datetime) -> bool:
    return WINDOW[0] <= when.date() <= WINDOW[1]


def lines(year: Path, seen: Counter[str]) -> list[Line]:
    """Every stay and contact ending in the window, priced; ``seen`` counts the privately paid
    by payer (``paid_by_30``...) and the official DRGs used (and those without a weight)."""
    table = _drg_table()
    weights = {r["drg"]: Decimal(r["weight"]) for r in table}
    priced: list[Line] = []
    unidentified = without_identity(year)
    for unit, path in sorted(current_files(year / "inbox").items()):
        seen["without_identity"] += len(unidentified[unit])
        for kind, stay in activities(episodes(unit, path, unidentified[unit])):
            end = max(e.end for e in stay)
            if not _ends_in_window(end):
                continue
            first = stay[0]
            official = next((e.drg for e in stay if e.drg), None)
            main = next((e.main for e in stay if e.main), None)
            procedure = any(e.procedure for e in stay)
            drg = official or simplified_drg(table, main, procedure, first.level)
            psych = kind == "contact" and (
                first.sektor in PSYCH_SEKTOR or first.fagomrade in PSYCH_FAGOMRADE
            )
            private = first.debitor in PRIVATE
            if private:
                seen[f"paid_by_{first.debitor}"] += 1
            elif official:
                seen["official_drg"] += 1
                seen["official_drg_unlisted"] += official not in weights
            activity = "psych_tsb_outpatient" if psych else "somatic"
            priced.append(Line(unit, kind, first, weights.get(drg), activity, private))
    return priced


def _rounded(points: Decimal | None, price: Decimal, share: Decimal, seen: Counter[str]) -> Decimal:
    """A money line: exact decimals, half up to whole øre (nothing for a DRG without weight);
    ``seen`` counts the lines where half up decides (``half_ore``)."""
    if points is None:
        return Decimal(0)
    exact = points * price * share
    if exact * 100 % 1 == Decimal("0.5"):
        seen["half_ore"] += 1
    return exact.quantize(ORE, ROUND_HALF_UP)


def isf(year: Path, seen: Counter[str]) -> dict[tuple, tuple]:
    """Per unit ``(resh,)`` and ``("all",)``: (stays, contacts, points, refund,
    left_out_paid_privately) for the window; the refund is the sum of the rounded lines."""
    rates = _rates()
    totals: dict[tuple, list] = defaultdict(lambda: [0, 0, Decimal(0), Decimal(0), 0])
    for line in lines(year, seen):
        for key in ((line.unit,), ("all",)):
            row = totals[key]
            if line.private:
                row[4] += 1
                continue
            row[0 if line.kind == "stay" else 1] += 1
            row[2] += line.points or 0
            price, share, _ = rates[line.activity]
            row[3] += _rounded(line.points, price, share, seen)
    return {key: tuple(row) for key, row in totals.items()}


def _category(line: Line, treating: str, regions: dict[str, str]) -> str | None:
    """Where a stay or contact goes in the settlement, before who pays is asked."""
    home = regions.get(line.first.municipality)
    if not treating:
        return "no_treating_region"
    if home is None:
        return "invalid_municipality"
    if home == ABROAD:
        return "abroad"
    return "case" if home != treating else None


def gjestepasient(year: Path, seen: Counter[str]) -> dict[tuple, tuple]:
    """``("matrix", treating, home)``: (cases, points, amount) and ``("apart", treating,
    category)``: (cases, cases_private, points), summed over the window's months. ``seen``
    counts each category and the municipalities listed apart (``komNrHjem_9900``...)."""
    units, regions, rates = registry(year), _regions(), _rates()
    cells: dict[tuple, list] = {}
    for line in lines(year, Counter()):
        unit = units[line.unit]
        category = _category(line, unit["rhf"], regions)
        if category is None:
            continue
        if category in ("abroad", "invalid_municipality"):
            seen[f"komNrHjem_{line.first.municipality}"] += 1
        if line.private:
            category = "paid_privately"
        seen[category] += 1
        if category == "case":
            cell = cells.setdefault(
                ("matrix", unit["rhf"], regions[line.first.municipality]),
                [0, Decimal(0), Decimal(0)],
            )
            price, _, share = rates[line.activity]
            cell[0] += 1
            cell[1] += line.points or 0
            cell[2] += _rounded(line.points, price, share, seen)
        else:
            cell = cells.setdefault(("apart", unit["rhf"], category), [0, 0, Decimal(0)])
            cell[0] += 1
            cell[1] += unit["ownership"] == "private"
            cell[2] += line.points or 0
    return {key: tuple(cell) for key, cell in cells.items()}


def _rows(home: Path, sql: str) -> list[tuple]:
    con = duckdb.connect(str(home / "warehouse.duckdb"), read_only=True)
    try:
        return con.execute(sql, [PERIOD]).fetchall()
    finally:
        con.close()


def isf_warehouse(home: Path) -> dict[tuple, tuple]:
    """The current version's ``period`` rows of the levels unit and all, keyed as :func:`isf`;
    points (DOUBLE) read back as the exact decimal they were summed as."""
    rows = _rows(
        home,
        "SELECT level, key, stays, contacts, points::DECIMAL(18, 4), refund, "
        "left_out_paid_privately FROM isf_summary_current WHERE period = ? "
        "AND month = 'period' AND level IN ('unit', 'all')",
    )
    return {(key,) if level == "unit" else ("all",): tuple(values) for level, key, *values in rows}


def gjestepasient_warehouse(home: Path) -> dict[tuple, tuple]:
    """The current version's matrix and list apart summed over the months, keyed as
    :func:`gjestepasient` (an empty treating RHF as ``""``)."""
    matrix = _rows(
        home,
        "SELECT treating_rhf, home_rhf, sum(cases), sum(points::DECIMAL(18, 4)), sum(amount) "
        "FROM gjestepasient_matrix_current WHERE period = ? GROUP BY ALL",
    )
    apart = _rows(
        home,
        "SELECT coalesce(treating_rhf, ''), category, sum(cases), sum(cases_private), "
        "sum(points::DECIMAL(18, 4)) FROM gjestepasient_apart_current WHERE period = ? "
        "GROUP BY ALL",
    )
    cells = {("matrix", treating, home_rhf): tuple(v) for treating, home_rhf, *v in matrix}
    cells |= {("apart", treating, category): tuple(v) for treating, category, *v in apart}
    return cells
