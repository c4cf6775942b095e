"""Ventetider recomputed from the raw files, apart from the pipeline, on a synthetic T1.

The outside review recomputes every delivery from the files as received. This does the same for
the published one, with nothing of ``npr_pipeline`` but the synthetic generator and the CLI:
each unit's current ord (its highest lopenr among the 2026 files reaching the snapshot) is read
here with lxml's own iterparse, every referral period is measured by RULES.md and
docs/deliveries/ventetider.md as written, and every published cell of the groups ``all`` and
``unit`` must equal the warehouse's (a suppressed cell only has to exist there). The generator
never links an acute episode to a referral period nor leaves out a deadline, so the large units'
current files are edited before intake to do both (:func:`_reach_the_rarer_rules`). Session 24
ran the same recomputation over the README's 50-unit year, all groups: every published cell
agreed, as did ISF, the guest-patient settlement and kjernejournal row for row
(docs/benchmarks.md).
"""

from __future__ import annotations

import csv
from collections import Counter, defaultdict
from dataclasses import dataclass
from datetime import date
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

import duckdb
import pytest
from lxml import etree
from typer.testing import CliRunner

from npr_pipeline.cli import app
from npr_pipeline.home import Home
from npr_pipeline.settings import TEST, record_environment
from npr_pipeline.synth.run import SynthOptions, run_synth

WINDOW = (date(2026, 1, 1), date(2026, 4, 30))  # T1: its own four months
SNAPSHOT = WINDOW[1]
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


@pytest.fixture(scope="module")
def produced(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A synthetic January-April for 8 units received and produced for 2026-T1 (year, HOME)."""
    root = tmp_path_factory.mktemp("recomputed")
    year, home = root / "year", root / "home"
    run_synth(SynthOptions(out=year, year=2026, through=4, units=8, seed=7,
                           episodes_per_unit_month=120))  # fmt: skip
    for path in current_ords(year / "inbox").values():
        _reach_the_rarer_rules(path)
    Home(root=home).ensure()
    record_environment(Home(root=home), TEST, "tests")
    runner = CliRunner()
    for args in (
        ["registry", "import", str(year / "registry.csv")],
        ["intake", str(year / "inbox")],
        ["run", "--period", "2026-T1"],
    ):
        result = runner.invoke(app, ["--home", str(home), *args])
        assert result.exit_code == 0, result.output
    return year, home


def _reach_the_rarer_rules(path: Path, each: int = 5) -> None:
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


def _local(element: etree._Element) -> str:
    return etree.QName(element).localname


def _day(text: str | None) -> date | None:
    return date.fromisoformat(text) if text else None


def _envelope(path: Path) -> tuple[str | None, str | None, dict[str, str]]:
    """The message type, the sender's RESH id and the Melding's attributes."""
    msg_type = unit = None
    in_sender = False
    for event, element in etree.iterparse(str(path), events=("start", "end")):
        name = _local(element)
        if name == "Sender":
            in_sender = event == "start"
        elif event == "end" and name == "Type" and msg_type is None:
            msg_type = element.get("V")
        elif event == "end" and name == "Ident" and in_sender:
            kind = [c.get("V") for c in element if _local(c) == "TypeId"]
            ids = [c.text for c in element if _local(c) == "Id"]
            if kind == ["RSH"] and ids:
                unit = (ids[0] or "").strip()
        elif event == "start" and name == "Melding":
            return msg_type, unit, dict(element.attrib)
    return msg_type, unit, {}


def current_ords(inbox: Path) -> dict[str, Path]:
    """Per unit its 2026 ord reaching the snapshot with the highest lopenr."""
    best: dict[str, tuple[int, Path]] = {}
    for path in sorted(inbox.glob("*.xml")):
        msg_type, unit, melding = _envelope(path)
        if (
            msg_type != "NPR_ORD"
            or unit is None
            or not melding["fraDatoPeriode"].startswith("2026")
        ):
            continue
        lopenr = int(melding["lopenr"])
        if _day(melding["tilDatoPeriode"]) >= SNAPSHOT and lopenr > best.get(unit, (-1, path))[0]:
            best[unit] = (lopenr, path)
    return {unit: path for unit, (_, path) in best.items()}


def _known(day: date | None) -> date | None:
    """A date after the snapshot is unknown at the snapshot, whatever a later file says."""
    return day if day is not None and day <= SNAPSHOT else None


def _in_window(day: date | None) -> bool:
    return day is not None and WINDOW[0] <= day <= WINDOW[1]


def out_of_scope(referral: etree._Element, emergencies: set[str]) -> str | None:
    """Why a referral period is not a wait for planned care, if it is not."""
    if not referral.get("fristStartHelsehjelp"):
        return "no_deadline"
    if referral.get("henvisningsperiodeID") in emergencies:
        return "emergency"
    if _day(referral.get("mottattDato")) > SNAPSHOT:
        return "received_after"
    return None


def _measure(unit: str, referral: etree._Element) -> Wait | None:
    """One referral period in scope by the rules: its measure, days and fristbrudd."""
    a = referral.attrib
    deadline = _day(a["fristStartHelsehjelp"])
    seniority = _day(a["ansiennitetsdato"])
    started, ended = _known(_day(a.get("tjenestestart"))), _known(_day(a.get("avviklingsdato")))
    if _in_window(started):
        extended = any(
            _local(p) == "Utsettelse"
            and p.get("utsettelseskode") in NOT_ORDINARY
            and _day(p.get("utsettelsesdato")) <= SNAPSHOT
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


def waits(unit: str, path: Path, left_out: Counter[str]) -> list[Wait]:
    """Every measured referral period of one file; ``left_out`` counts those out of scope.

    Two streaming passes: a referral is an emergency when any episode of the submission
    linked to it is acute, wherever in the file that episode is."""
    emergencies = {
        episode.get("henvisningsperiodeID")
        for _, episode in etree.iterparse(str(path), tag="{*}Episode")
        if episode.get("innmateHast") in EMERGENCY
    }
    found: list[Wait] = []
    for _, referral in etree.iterparse(str(path), tag="{*}Henvisningsperiode"):
        why = out_of_scope(referral, emergencies)
        wait = None if why else _measure(unit, referral)
        if why:
            left_out[why] += 1
        elif wait is not None:
            found.append(wait)
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


def recomputed(year: Path, left_out: Counter[str]) -> dict[tuple[str, str, str], tuple]:
    groups: dict[tuple[str, str, str], list[Wait]] = defaultdict(list)
    for unit, path in current_ords(year / "inbox").items():
        for wait in waits(unit, path, left_out):
            groups[("all", "all", wait.measure)].append(wait)
            groups[("unit", unit, wait.measure)].append(wait)
    return {key: statistics(group, key[2]) for key, group in groups.items()}


def warehouse_cells(home: Path) -> dict[tuple[str, str, str], tuple]:
    """The current version's cells of the groups all and unit; ``None`` for a suppressed one."""
    con = duckdb.connect(str(home / "warehouse.duckdb"), read_only=True)
    try:
        rows = con.execute(
            "SELECT group_type, group_value, measure, suppressed, n, mean_days, median_days, "
            "fristbrudd, fristbrudd_pct FROM ventetider_current "
            "WHERE period = '2026-T1' AND group_type IN ('all', 'unit')"
        ).fetchall()
    finally:
        con.close()

    def number(value: object) -> float | None:
        return None if value is None else float(value)  # type: ignore[arg-type]

    return {
        (group, value, measure): None if suppressed else tuple(number(v) for v in stats)
        for group, value, measure, suppressed, *stats in rows
    }


def test_every_published_cell_is_the_raw_files_recomputed(produced: tuple[Path, Path]) -> None:
    year, home = produced
    left_out: Counter[str] = Counter()
    mine, theirs = recomputed(year, left_out), warehouse_cells(home)
    assert set(theirs) == set(mine)  # the same cells, suppressed ones included
    published = {key: cells for key, cells in theirs.items() if cells is not None}
    for key, cells in published.items():
        assert cells == tuple(None if v is None else float(v) for v in mine[key]), key
    # not vacuous: the edited referrals were left out, the headline cells are published, and
    # so are most units' largest ones
    assert left_out["emergency"] == left_out["no_deadline"] >= 5, left_out
    assert {("all", "all", m) for m in MEASURED} <= set(published)
    with open(year / "registry.csv", encoding="utf-8") as handle:
        units = {row["reshID"] for row in csv.DictReader(handle)}
    assert len({key[1] for key in published if key[0] == "unit"}) >= len(units) // 2
