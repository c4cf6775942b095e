"""Guest-patient settlement on hand-built submissions: the matrix computed by hand.

The activity is the ISF test's (test_rules_isf.py): both Helse Vest units, Haukeland (public)
and Aleris Bergen sentrum (private). Settlement price per point in 2026 (isf_rates.csv,
somatic row, assumed): 55,969 kr x 0.80 = 44,775.20 kr.
"""

from __future__ import annotations

import json

import pytest

from npr_pipeline.home import Home
from tests.handbuilt import ALERIS, HAUKELAND, current, new_home, query, receive, run_step
from tests.test_rules_isf import first_files


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Home:
    """The ISF case's March files; settlement for 2026-03 and for 2026-02."""
    root = tmp_path_factory.mktemp("gp")
    home = new_home(root, [HAUKELAND, ALERIS])
    receive(home, root / "inbox", *first_files())
    assert run_step(home, "2026-03", "gjestepasient") == 1
    assert run_step(home, "2026-02", "gjestepasient") == 1
    return home


def test_helse_nord_patients_treated_in_helse_vest(home: Home) -> None:
    matrix = current(home, "gjestepasient_matrix", "2026-03")
    # only Helse Nord residents are guests (the Bergen patient P1 is at home: the diagonal is
    # empty by construction): P2 (Bodø) two stays of 0.92, P4 (Tromsø) one contact of 0.04,
    # P6 (Alta) one day treatment of 0.78 at the private clinic.
    # cases 4; points 0.92 + 0.92 + 0.04 + 0.78 = 2.66;
    # amounts 0.92 x 44,775.20 = 41,193.184 -> 41,193.18 (twice), 0.04 x 44,775.20 = 1,791.008
    # -> 1,791.01, 0.78 x 44,775.20 = 34,924.656 -> 34,924.66;
    # sum 41,193.18 x 2 + 1,791.01 + 34,924.66 = 119,102.03, of which private 34,924.66 and
    # public 84,177.37. Helse Nord (home) pays Helse Vest (treating).
    assert len(matrix) == 1
    row = matrix.iloc[0]
    assert (row["month"], row["treating_rhf"], row["home_rhf"]) == ("2026-03", "HV", "HN")
    assert (row["cases"], round(row["points"], 4), row["amount"]) == (4, 2.66, 119102.03)
    assert (row["cases_private"], row["amount_private"], row["amount_public"]) == (
        1, 34924.66, 84177.37,
    )  # fmt: skip
    assert row["rate_assumed"]


def test_detail_lines_of_the_two_stays(home: Home) -> None:
    detail = current(home, "gjestepasient_detail", "2026-03").set_index("activity_id")
    assert sorted(detail.index) == ["E11", "E21", "E22", "E41"]  # E11: Aleris' id
    stays = detail.loc[["E21", "E22"]]
    # two stays of the patient from Bodø (1804): 0.92 x 55,969 x 0.80 = 41,193.18 each,
    # 82,386.36 together
    assert stays["amount"].tolist() == [41193.18, 41193.18]
    assert round(stays["amount"].sum(), 2) == 82386.36
    assert set(stays["komNrHjem"]) == {"1804"} and set(stays["home_rhf"]) == {"HN"}
    assert stays["settlement_share"].tolist() == [0.80, 0.80]
    # the outpatient mental health contact is settled at the somatic price (documented choice):
    # 0.04 x 55,969 x 0.80 = 1,791.01, not at the mental health price of its ISF refund
    assert detail.loc["E41", ["unit_price_nok", "amount"]].tolist() == [55969.0, 1791.01]
    assert detail.loc["E11", ["unit", "ownership"]].tolist() == [ALERIS.resh, "private"]
    assert set(detail.drop(index="E11")["ownership"]) == {"public"}


def test_abroad_and_invalid_municipality_listed_apart(home: Home) -> None:
    apart = current(home, "gjestepasient_apart", "2026-03")
    got = {
        r.category: (r.month, r.treating_rhf, r.cases, r.cases_private, round(r.points, 4))
        for r in apart.itertuples()
    }
    # P3 lives abroad (9000): one stay, official DRG 238A, 1.90 points; P5's municipality
    # 0000 is invalid: one contact, 0.08 points. Counted here, never dropped silently.
    assert got == {
        "abroad": ("2026-03", "HV", 1, 0, 1.9),
        "invalid_municipality": ("2026-03", "HV", 1, 0, 0.08),
    }


def test_february_window(home: Home) -> None:
    matrix = current(home, "gjestepasient_matrix", "2026-02")
    # February: only E40 (Tromsø, 0.04 points -> 1,791.01); P2's stay from 26 February ends
    # on 3 March, so it belongs to March and is not in February's settlement
    assert matrix[["month", "treating_rhf", "home_rhf", "cases", "amount"]].values.tolist() == [
        ["2026-02", "HV", "HN", 1, 1791.01]
    ]
    assert current(home, "gjestepasient_apart", "2026-02").empty


def test_delivery_versions(home: Home) -> None:
    versions = query(
        home,
        "SELECT period, version, official, tables FROM delivery_versions "
        "WHERE step = 'gjestepasient' ORDER BY period",
    )
    assert versions[["period", "version", "official"]].values.tolist() == [
        ["2026-02", 1, False],
        ["2026-03", 1, False],
    ]
    tables = json.loads(versions["tables"].iloc[1])
    assert tables == {
        "gjestepasient_matrix": 1,
        "gjestepasient_detail": 4,
        "gjestepasient_apart": 2,
        "gjestepasient_exclusions": 0,
    }
