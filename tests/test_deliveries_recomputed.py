"""The deliveries of a synthetic T1 recomputed from the raw files, apart from the pipeline.

The outside review recomputes every delivery from the files as received. These tests do the same
with nothing of ``npr_pipeline`` but the synthetic generator and the CLI: a synthetic
January-April of 8 units and 3 privately funded providers (no RHF agreement: no treating
region in the settlement) goes through ``npr intake`` and ``npr run --period 2026-T1``, and each
delivery is recomputed by a module of its own (``tests/recompute_*.py``: lxml, ``decimal``, the
reference CSVs) from RULES.md and its docs page, then held to the warehouse. The generator never
reaches some rules (an acute episode linked to a referral period, a referral without a
deadline): the current files are edited before intake to reach them (``reach_the_rarer_rules``
of each module), and the largest unit resends them after the snapshot
(:func:`resend_after_the_snapshot`). Session 24 ran the same recomputations over the README's
50-unit year, every group and detail line: every figure agreed (docs/benchmarks.md, "Session
24")."""

from __future__ import annotations

import uuid
from collections import Counter
from pathlib import Path

import duckdb
import pytest
from lxml import etree
from typer.testing import CliRunner

from npr_pipeline.cli import app
from npr_pipeline.home import Home
from npr_pipeline.settings import TEST, record_environment
from npr_pipeline.synth.run import SynthOptions, run_synth
from tests import recompute_isf, recompute_kjernejournal, recompute_ventetider
from tests.recompute_raw import current_files, envelope, registry


@pytest.fixture(scope="module")
def produced(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A synthetic January-April for 8 units and 3 privately funded providers without an RHF
    agreement, received and produced for 2026-T1 (year, HOME)."""
    root = tmp_path_factory.mktemp("recomputed")
    year, home = root / "year", root / "home"
    run_synth(SynthOptions(out=year, year=2026, through=4, units=8, seed=7,
                           episodes_per_unit_month=120, private_units=3))  # fmt: skip
    for edit in (recompute_ventetider, recompute_isf, recompute_kjernejournal):
        for path in current_files(year / "inbox").values():
            edit.reach_the_rarer_rules(path)
    for path in current_files(year / "inbox", "NPR_IDE").values():
        recompute_kjernejournal.reach_the_rarer_ide_rules(path)
    resent = resend_after_the_snapshot(year / "inbox")
    assert {current_files(year / "inbox", t)[resent].name for t in ("NPR_ORD", "NPR_IDE")} == {
        f"{resent}_2026-05_ord.xml",
        f"{resent}_2026-05_ide.xml",
    }
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


def resend_after_the_snapshot(inbox: Path) -> str:
    """The largest unit sends its cumulative files again after T1's snapshot, through May (as
    it would in June): T1 must be made from these current files, cut at 30 April. Against its
    April file one contact of April moved to May (out of T1) and one is now paid by the patient
    (left out of ISF), so a T1 made from the April file differs. Returns the unit."""
    ords, ides = current_files(inbox), current_files(inbox, "NPR_IDE")
    unit = max(ords, key=lambda u: ords[u].stat().st_size)
    lopenr = max(int(envelope(p)[2]["lopenr"]) for p in inbox.glob(f"{unit}_2026-*.xml"))
    for number, path in enumerate((ords[unit], ides[unit]), start=1):
        tree = etree.parse(str(path))
        msg_id = str(uuid.uuid5(uuid.NAMESPACE_URL, f"resent {path.name}"))
        melding = {
            "tilDatoPeriode": "2026-05-31",
            "uttakDato": "2026-06-02",
            "uttakTidspunkt": "2026-06-02T02:00:00",
            "lopenr": str(lopenr + number),
            "lokalident": msg_id,
        }
        next(tree.iter("{*}Melding")).attrib.update(melding)
        next(tree.iter("{*}GenDate")).text = "2026-06-02T02:00:00"
        next(tree.iter("{*}MsgId")).text = msg_id
        plain = [
            e
            for e in tree.iter("{*}Episode")
            if (e.get("omsorgsniva"), e.get("debitor")) == ("3", "1")
            and e.get("henvisningsperiodeID") is None
            and e.get("utDatoTid", "") < "2026-04-30"
        ]
        if plain:  # the ord
            plain[-1].set("innDatoTid", "2026-05-11T10:00:00")
            plain[-1].set("utDatoTid", "2026-05-11T10:30:00")
            plain[-2].set("debitor", "30")
        name = path.name.replace("_2026-04_", "_2026-05_")
        tree.write(str(inbox / name), encoding=tree.docinfo.encoding, xml_declaration=True)
    return unit


def ventetider_cells(home: Path) -> dict[tuple[str, str, str], tuple]:
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


def test_every_published_ventetider_cell_is_recomputed(
    produced: tuple[Path, Path],
) -> None:
    year, home = produced
    left_out: Counter[str] = Counter()
    mine, theirs = recompute_ventetider.ventetider(year, left_out), ventetider_cells(home)
    assert set(theirs) == set(mine)  # the same cells, suppressed ones included
    published = {key: cells for key, cells in theirs.items() if cells is not None}
    for key, cells in published.items():
        assert cells == tuple(None if v is None else float(v) for v in mine[key]), key
    # not vacuous: the edited referrals were left out, the headline cells are published, and
    # so are those of half the publicly funded units (the private providers are tiny)
    assert left_out["emergency"] == left_out["no_deadline"] >= 5, left_out
    assert {("all", "all", m) for m in recompute_ventetider.MEASURED} <= set(published)
    public = [u for u in registry(year).values() if u["financing"] == "public"]
    assert len({key[1] for key in published if key[0] == "unit"}) >= len(public) // 2 >= 4


def test_every_isf_row_is_recomputed(produced: tuple[Path, Path]) -> None:
    """Stays, contacts, points, refund and what was left out, per unit and in all, to the øre."""
    year, home = produced
    seen: Counter[str] = Counter()
    assert recompute_isf.isf(year, seen) == recompute_isf.isf_warehouse(home)
    assert all(seen[rule] >= 1 for rule in recompute_isf.ISF_RARE), seen


def test_every_guest_patient_cell_is_recomputed(produced: tuple[Path, Path]) -> None:
    """The matrix of treating x home region and the cases listed apart, to the øre."""
    year, home = produced
    seen: Counter[str] = Counter()
    mine = recompute_isf.gjestepasient(year, seen)
    assert mine == recompute_isf.gjestepasient_warehouse(home)
    assert all(seen[rule] >= 1 for rule in recompute_isf.GJESTEPASIENT_RARE), seen
    assert any(key[0] == "matrix" for key in mine) and any(key[0] == "apart" for key in mine)


def test_every_kjernejournal_row_is_recomputed(produced: tuple[Path, Path]) -> None:
    """Row for row (person, place, day, dates, care level, contacts) and the manifest's counts;
    a difference is shown with the fødselsnummer masked."""
    year, home = produced
    seen: Counter[str] = Counter()
    mine, my_counts = recompute_kjernejournal.kjernejournal(year, seen)
    theirs, their_counts = recompute_kjernejournal.kjernejournal_delivered(home)
    masked = recompute_kjernejournal.masked
    assert mine == theirs, (masked(mine - theirs), masked(theirs - mine))
    assert my_counts == their_counts
    assert all(seen[rule] >= 1 for rule in recompute_kjernejournal.RARE), seen
