"""Ventetider on hand-built submissions: every published number computed by hand.

Two Helse Vest units: Haukeland (public) and Aleris Bergen sentrum (private). Haukeland's March
file holds five ordinary completed waits (one ends on 31 March, the last day of the window),
one wait the patient extended, one ended for another reason, an emergency referral, one
without a deadline, one completed in February and five still waiting; Aleris has two still
waiting. The files go through the real intake; ventetider is produced for 2026-03 and for
2026-02 (from the same cumulative March file), then Haukeland resubmits March with one care
start moved a week later and March is produced again.
"""

from __future__ import annotations

import json
import math
from datetime import date

import numpy as np
import pandas as pd
import pytest

from npr_pipeline import reference
from npr_pipeline.home import Home
from npr_pipeline.periods import Period
from npr_pipeline.production import ventetider
from npr_pipeline.production.run import open_period
from tests.handbuilt import (
    ALERIS,
    HAUKELAND,
    Episode,
    Patient,
    Postponement,
    Referral,
    Submission,
    at,
    d,
    fnr,
    new_home,
    query,
    receive,
    run_step,
    unit,
)


def _patient(nr: str, k: int, referral: Referral, *episodes: Episode) -> Patient:
    return Patient(nr, fnr(date(1960, 1, k)), referrals=(referral,), episodes=episodes)


def haukeland(v3_care: date) -> list[Patient]:
    """Haukeland's referrals (fagområde 110); ``v3_care`` is the date the resubmission moves.

    Days are care start (or snapshot 2026-03-31) minus ansiennitetsdato.
    """
    return [
        # completed, ordinary, in March
        # 20 d, ends on the last day; the patient pays the treatment (debitor 30): who pays
        # does not matter for waiting times (RULES.md)
        _patient("V1", 1, Referral("V1", d("2026-03-11"), d("2026-04-15"),
                                   care_start=d("2026-03-31")),
                 Episode("E1", at("2026-03-31", "10:00"), at("2026-03-31", "10:30"),
                         referral="V1", debitor="30")),
        _patient("V2", 2, Referral("V2", d("2026-02-08"), d("2026-03-20"),
                                   care_start=d("2026-03-10"))),  # 20 + 10 = 30 d
        _patient("V3", 3, Referral("V3", d("2026-02-05"), d("2026-03-14"),
                                   care_start=v3_care)),  # 23 + 15 = 38 d, after the deadline
        _patient("V4", 4, Referral("V4", d("2026-01-29"), d("2026-03-20"),
                                   care_start=d("2026-03-20"))),  # 2 + 28 + 20 = 50 d, on it
        _patient("V5", 5, Referral("V5", d("2026-01-17"), d("2026-04-01"),
                                   care_start=d("2026-03-25"),  # 14 + 28 + 25 = 67 d
                                   postponements=(Postponement("1", d("2026-02-01")),))),
        # the patient declined an offer (21): completed, not ordinary
        _patient("V6", 6, Referral("V6", d("2026-01-05"), d("2026-02-15"),
                                   care_start=d("2026-03-05"),
                                   postponements=(Postponement("21", d("2026-02-20")),))),
        # referral withdrawn (avviklingskode 2): ended for another reason
        _patient("V7", 7, Referral("V7", d("2026-02-01"), d("2026-03-31"),
                                   ended=d("2026-03-12"), end_code="2")),
        # emergency admission linked to the referral: never enters
        _patient("V8", 8, Referral("V8", d("2026-03-01"), d("2026-03-01"),
                                   care_start=d("2026-03-02")),
                 Episode("E8", at("2026-03-02"), at("2026-03-04"), level="1", urgency="1",
                         diagnoses=("I219",), referral="V8")),
        # no deadline: not on the waiting list for planned care
        _patient("V9", 9, Referral("V9", d("2026-02-01"), None, care_start=d("2026-03-09"))),
        # completed in February: not in March's window
        _patient("V10", 10, Referral("V10", d("2026-01-20"), d("2026-02-28"),
                                     care_start=d("2026-02-20"))),
        # still waiting on 2026-03-31
        _patient("W1", 11, Referral("W1", d("2026-03-21"), d("2026-05-01"))),  # 10 d
        _patient("W2", 12, Referral("W2", d("2026-03-11"), d("2026-03-31"))),  # 20 d, due today
        _patient("W3", 13, Referral("W3", d("2026-02-28"), d("2026-03-30"))),  # 31 d, breach
        _patient("W4", 14, Referral("W4", d("2026-02-14"), d("2026-04-30"))),  # 14 + 31 = 45 d
        _patient("W5", 15, Referral("W5", d("2026-01-01"), d("2026-03-01"))),  # 89 d, breach
    ]  # fmt: skip


ALERIS_PATIENTS = [
    _patient("B1", 16, Referral("B1", d("2026-03-01"), d("2026-04-15"), fagomrade="050")),  # 30
    _patient("B2", 17, Referral("B2", d("2026-02-20"), d("2026-03-20"), fagomrade="050")),  # 39
]


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Home:
    """March v1 and February v1 from the first files; March v2 after the resubmission."""
    root = tmp_path_factory.mktemp("vt")
    home = new_home(root, [HAUKELAND, ALERIS])
    receive(
        home,
        root / "inbox1",
        Submission(HAUKELAND, 3, 3, haukeland(d("2026-03-15"))),
        Submission(ALERIS, 3, 3, ALERIS_PATIENTS),
    )
    assert run_step(home, "2026-03", "ventetider") == 1
    assert run_step(home, "2026-02", "ventetider") == 1
    # the resubmission: V3's care start moves from 15 to 22 March
    receive(home, root / "inbox2", Submission(HAUKELAND, 3, 4, haukeland(d("2026-03-22"))))
    assert run_step(home, "2026-03", "ventetider") == 2
    return home


def _row(home: Home, period: str, version: int, group: str, value: str, measure: str) -> dict:
    rows = query(
        home,
        "SELECT * FROM ventetider WHERE period = ? AND version = ? AND group_type = ? "
        "AND group_value = ? AND measure = ?",
        [period, version, group, value, measure],
    )
    assert len(rows) == 1, (period, version, group, value, measure, rows)
    return rows.iloc[0].to_dict()


def _stats(row: dict) -> tuple:
    return (
        row["n"],
        row["mean_days"],
        row["median_days"],
        row["fristbrudd"],
        row["fristbrudd_pct"],
    )


def test_completed_waits_mean_median_and_fristbrudd(home: Home) -> None:
    row = _row(home, "2026-03", 1, "all", "all", "avviklet")
    # days 20 (V1, care on 31 March), 30, 38, 50, 67: mean 205 / 5 = 41.0, median 38;
    # fristbrudd: V3 only (care 15 March > deadline 14 March; V4 started on its deadline):
    # 1 of 5 = 20.0 %. V6 (patient declined), V7 (withdrawn), V8 (emergency), V9 (no deadline),
    # V10 (February) are not among them.
    assert _stats(row) == (5, 41.0, 38.0, 1, 20.0)
    assert not row["suppressed"]
    assert row["status"] == "preliminary" and row["snapshot_date"] == "2026-03-31"
    # Haukeland alone (Aleris has no completed wait): the same numbers, public
    assert _stats(_row(home, "2026-03", 1, "unit", HAUKELAND.resh, "avviklet")) == _stats(row)
    assert _stats(_row(home, "2026-03", 1, "ownership", "public", "avviklet")) == _stats(row)
    assert _stats(_row(home, "2026-03", 1, "trust", "Helse Bergen HF", "avviklet")) == _stats(row)


def test_still_waiting_at_the_snapshot_and_secondary_suppression(home: Home) -> None:
    row = _row(home, "2026-03", 1, "all", "all", "ventende")
    # days at 31 March: Haukeland 10, 20, 31, 45, 89; Aleris 30, 39.
    # n 7; mean 264 / 7 = 37.71 -> 37.7; sorted 10 20 30 31 39 45 89: median 31;
    # fristbrudd: W3 (30 March), W5 (1 March), B2 (20 March): 3 of 7 = 42.857 -> 42.9 %.
    # W2's deadline is the snapshot date itself: not a breach.
    assert _stats(row) == (7, 37.7, 31.0, 3, 42.9)
    assert _stats(_row(home, "2026-03", 1, "rhf", "HV", "ventende")) == _stats(row)
    # Aleris (private) has 2 (< 5): suppressed; Haukeland's 5 would give Aleris' 2 away by
    # subtraction from the total 7, so it is suppressed too (secondary suppression).
    for group, private, public in (
        ("ownership", "private", "public"),
        ("unit", ALERIS.resh, HAUKELAND.resh),
        ("fagomrade", "050", "110"),
    ):
        for value in (private, public):
            cell = _row(home, "2026-03", 1, group, value, "ventende")
            assert cell["suppressed"], (group, value)
            assert all(math.isnan(v) for v in _stats(cell)), (group, value)


def test_waits_counted_apart_are_suppressed_small_cells(home: Home) -> None:
    for measure in ("avviklet_ikke_ordinaer", "avsluttet_annen_grunn"):
        row = _row(home, "2026-03", 1, "all", "all", measure)
        assert row["suppressed"] and math.isnan(row["n"])


def test_unsuppressed_classification_of_every_referral(home: Home) -> None:
    """The same rule with threshold 1 shows the counts the small cells hide."""
    period = Period.parse("2026-03")
    con, _ = open_period(home, period)
    try:
        stats = ventetider.compute(con, period, threshold=1)["ventetider"]
    finally:
        con.close()
    everyone = stats[stats["group_type"] == "all"].set_index("measure")
    # V6 alone is "completed, not ordinary" (declined offer 21 on 20 Feb), V7 alone ended
    # for another reason; neither has mean, median or fristbrudd; V8 and V9 appear nowhere:
    # 5 + 1 + 1 + 7 = 14 of the 17 referrals (V8, V9, V10 left out of March).
    assert everyone["n"].to_dict() == {
        "avsluttet_annen_grunn": 1,
        "avviklet": 5,
        "avviklet_ikke_ordinaer": 1,
        "ventende": 7,
    }
    apart = everyone.loc[["avsluttet_annen_grunn", "avviklet_ikke_ordinaer"]]
    assert apart[["mean_days", "median_days", "fristbrudd"]].isna().all().all()


def test_february_from_the_march_file_ignores_later_dates(home: Home) -> None:
    row = _row(home, "2026-02", 1, "all", "all", "ventende")
    # snapshot 28 Feb; referrals received by then. V2-V5, V6 and V7 ended in March, which is
    # unknown on 28 Feb: they are still waiting. Days: V2 20, V3 23, V4 30, V5 42, V6 54
    # (26 + 28), V7 27, W3 0, W4 14, W5 58, B2 8. n 10; mean 276 / 10 = 27.6;
    # sorted 0 8 14 20 23 27 30 42 54 58: median (23 + 27) / 2 = 25.0 (even count);
    # fristbrudd: V6 (deadline 15 Feb) only: 10.0 %. W5's deadline 1 March is not before.
    assert _stats(row) == (10, 27.6, 25.0, 1, 10.0)
    completed = _row(home, "2026-02", 1, "all", "all", "avviklet")
    assert completed["suppressed"]  # V10 alone completed in February


def test_resubmission_changes_exactly_the_moved_wait(home: Home) -> None:
    before = _row(home, "2026-03", 1, "all", "all", "avviklet")
    after = _row(home, "2026-03", 2, "all", "all", "avviklet")
    # V3 now starts 22 March: 23 + 22 = 45 d, still after its deadline (14 March).
    # days 20 30 45 50 67: mean 212 / 5 = 42.4, median 45; fristbrudd still 1 (20.0 %).
    assert _stats(before) == (5, 41.0, 38.0, 1, 20.0)
    assert _stats(after) == (5, 42.4, 45.0, 1, 20.0)
    v1 = query(home, "SELECT * FROM ventetider WHERE period = '2026-03' AND version = 1")
    v2 = query(home, "SELECT * FROM ventetider_current WHERE period = '2026-03'")
    assert (v2["version"] == 2).all()
    key = ["group_type", "group_value", "measure"]
    merged = v1.merge(v2, on=key, suffixes=("_1", "_2"))
    assert len(merged) == len(v1) == len(v2)
    changed = merged[
        ~merged["mean_days_1"].fillna(-1).eq(merged["mean_days_2"].fillna(-1))
        | ~merged["median_days_1"].fillna(-1).eq(merged["median_days_2"].fillna(-1))
    ]
    # only the completed-wait cells that contain V3 change (everything but the other unit's
    # and the other fagområde's, which have no completed waits)
    assert set(changed["measure"]) == {"avviklet"}
    assert set(changed["group_type"]) == {
        "all", "rhf", "trust", "unit", "fagomrade", "sector", "ownership",
    }  # fmt: skip


def test_delivery_versions_carry_the_lineage(home: Home) -> None:
    versions = query(
        home,
        "SELECT * FROM delivery_versions WHERE step = 'ventetider' AND period = '2026-03' "
        "ORDER BY version",
    )
    assert versions["version"].tolist() == [1, 2]
    assert not versions["official"].any()  # monthly: preliminary
    first, second = (json.loads(s) for s in versions["submissions"])
    # both units' ord and ide; the resubmission swaps Haukeland's two files, nothing else
    assert len(first) == len(second) == 4
    by_unit = pd.DataFrame(second).groupby("unit")["file"].apply(sorted).to_dict()
    assert by_unit[HAUKELAND.resh] == [
        f"{HAUKELAND.resh}_2026-03_004_ide.xml",
        f"{HAUKELAND.resh}_2026-03_004_ord.xml",
    ]
    assert {s["submission_id"] for s in first if s["unit"] == ALERIS.resh} == {
        s["submission_id"] for s in second if s["unit"] == ALERIS.resh
    }
    assert json.loads(versions["tables"].iloc[0])["ventetider"] > 0


# -- small cells: no published total gives a hidden count away --------------------------------
VOSS = unit("5951165")  # Helse Bergen HF, Voss sjukehus: Haukeland's sister site
STAVANGER = unit("5270652")  # Helse Stavanger HF, Stavanger universitetssjukehus


def _waiting(prefix: str, month: int, count: int) -> list[Patient]:
    """``count`` referrals still waiting on 31 March (seniority 1 March, deadline 30 April)."""
    return [
        Patient(f"{prefix}{i}", fnr(date(1962, month, i)),
                referrals=(Referral(f"{prefix}{i}", d("2026-03-01"), d("2026-04-30")),))
        for i in range(1, count + 1)
    ]  # fmt: skip


@pytest.fixture(scope="module")
def hierarchy_home(tmp_path_factory: pytest.TempPathFactory) -> Home:
    """Helse Vest: Helse Bergen HF (Haukeland 10 waiting, Voss 3) and Helse Stavanger HF
    (Stavanger 6); every referral fagområde 110, every unit public and somatic."""
    root = tmp_path_factory.mktemp("vt-hierarchy")
    home = new_home(root, [HAUKELAND, VOSS, STAVANGER])
    receive(
        home,
        root / "inbox",
        Submission(HAUKELAND, 3, 3, _waiting("H", 1, 10)),
        Submission(VOSS, 3, 3, _waiting("S", 2, 3)),
        Submission(STAVANGER, 3, 3, _waiting("T", 3, 6)),
    )
    assert run_step(home, "2026-03", "ventetider") == 1
    return home


def test_a_unit_is_not_given_away_by_its_trust(hierarchy_home: Home) -> None:
    rows = query(hierarchy_home, "SELECT * FROM ventetider_current WHERE measure = 'ventende'")
    shown = {(r.group_type, r.group_value): (None if r.suppressed else int(r.n))
             for r in rows.itertuples()}  # fmt: skip
    # Voss' 3 is hidden (primary). Hiding another unit is not enough: Helse Bergen's 13 minus
    # Haukeland's 10 would give 3 back, so Haukeland is hidden (the smallest other part of
    # Helse Bergen HF); Stavanger's 6 and every total stay published.
    assert shown == {
        ("all", "all"): 19, ("rhf", "HV"): 19,
        ("trust", "Helse Bergen HF"): 13, ("trust", "Helse Stavanger HF"): 6,
        ("unit", VOSS.resh): None, ("unit", HAUKELAND.resh): None, ("unit", STAVANGER.resh): 6,
        ("fagomrade", "110"): 19, ("sector", "somatic"): 19, ("ownership", "public"): 19,
    }  # fmt: skip


def _published_lines(rows: pd.DataFrame) -> list[list[int]]:
    """Every published total with its parts (row positions, total last), from the registry:
    unit within trust within RHF within all; fagområde, sector, ownership within all."""
    registry = reference.units().set_index("reshID")
    keys = zip(rows["group_type"], rows["group_value"], strict=True)
    where = {(g, v): i for i, (g, v) in enumerate(keys)}
    lines = [[i for (g, _), i in where.items() if g == kind] + [where[("all", "all")]]
             for kind in ("rhf", "fagomrade", "sector", "ownership")]  # fmt: skip
    units = [v for g, v in where if g == "unit"]
    trust = {u: registry.loc[u, "parent_trust"] for u in units}
    rhf = {u: registry.loc[u, "rhf"] for u in units}
    for t in set(trust.values()):  # a trust (or '': units without one) and its units
        lines.append([where[("unit", u)] for u in units if trust[u] == t] + [where[("trust", t)]])
    for r in set(rhf.values()):  # an RHF and its trusts, where they lie wholly inside it
        inside = {trust[u] for u in units if rhf[u] == r}
        if all(rhf[u] == r for u in units if trust[u] in inside):
            lines.append([where[("trust", t)] for t in sorted(inside)] + [where[("rhf", r)]])
    return lines


def _recoverable(rows: pd.DataFrame) -> list[tuple[str, str]]:
    """Hidden cells the published values fix through the lines (rank test, independent of the
    production code): e_h in the row space of the line equations restricted to hidden cells."""
    hidden = np.flatnonzero(rows["suppressed"].to_numpy())
    if not len(hidden):
        return []
    equations = []
    for line in _published_lines(rows):
        row = np.zeros(len(rows))
        row[line[:-1]], row[line[-1]] = 1.0, -1.0
        equations.append(row[hidden])
    matrix = np.array(equations)
    rank = np.linalg.matrix_rank(matrix)
    found = []
    for i, h in enumerate(hidden):
        unit_vector = np.zeros(len(hidden))
        unit_vector[i] = 1.0
        if np.linalg.matrix_rank(np.vstack([matrix, unit_vector])) == rank:
            found.append((rows["group_type"].iloc[h], rows["group_value"].iloc[h]))
    return found


@pytest.mark.parametrize("fixture", ["home", "hierarchy_home"])
def test_no_suppressed_cell_is_recoverable_from_its_totals(
    fixture: str, request: pytest.FixtureRequest
) -> None:
    home = request.getfixturevalue(fixture)
    table = query(home, "SELECT * FROM ventetider ORDER BY period, version, measure")
    for (_, _, measure), rows in table.groupby(["period", "version", "measure"]):
        rows = rows.reset_index(drop=True)
        assert not _recoverable(rows), (measure, _recoverable(rows))
        for line in _published_lines(rows):  # by plain subtraction, the auditor's way
            assert rows["suppressed"].iloc[line].sum() != 1, (measure, rows.iloc[line])
