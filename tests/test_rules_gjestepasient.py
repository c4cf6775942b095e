"""Guest-patient settlement on hand-built submissions: the matrix computed by hand.

The activity is the ISF test's (test_rules_isf.py): both Helse Vest units, Haukeland (public)
and Aleris Bergen sentrum (private). Settlement price per point in 2026 (isf_rates.csv,
assumed): somatic 55,969 kr x 0.80 = 44,775.20 kr; outpatient mental health/TSB (the price ISF
uses for the same contact or day treatment) 3,937 kr x 0.80 = 3,149.60 kr.
"""

from __future__ import annotations

import json

import pytest

from npr_pipeline.home import Home
from npr_pipeline.production.headlines import headlines
from tests.handbuilt import ALERIS, HAUKELAND, current, new_home, query, receive, run_step
from tests.test_rules_isf import first_files, produce_rules_cases


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
    # amounts 0.92 x 44,775.20 = 41,193.184 -> 41,193.18 (twice), the DPS contact at the
    # mental health price 0.04 x 3,149.60 = 125.984 -> 125.98, 0.78 x 44,775.20 = 34,924.656
    # -> 34,924.66; sum of the rounded lines 41,193.18 x 2 + 125.98 + 34,924.66 = 117,437.00,
    # of which private 34,924.66 and public 82,512.34. Helse Nord (home) pays Helse Vest.
    assert len(matrix) == 1
    row = matrix.iloc[0]
    assert (row["month"], row["treating_rhf"], row["home_rhf"]) == ("2026-03", "HV", "HN")
    assert (row["cases"], round(row["points"], 4), row["amount"]) == (4, 2.66, 117437.00)
    assert (row["cases_private"], row["amount_private"], row["amount_public"]) == (
        1, 34924.66, 82512.34,
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
    # the outpatient mental health contact is settled at the price ISF uses for it (RULES.md):
    # 0.04 x 3,937 x 0.80 = 125.984 -> 125.98, never the somatic 0.04 x 55,969 x 0.80 = 1,791.01
    assert detail.loc["E41", ["activity", "unit_price_nok", "amount"]].tolist() == [
        "psych_tsb_outpatient", 3937.0, 125.98,
    ]  # fmt: skip
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
    # February: only E40 (Tromsø, DPS, 0.04 x 3,149.60 -> 125.98); P2's stay from 26 February
    # ends on 3 March, so it belongs to March and is not in February's settlement
    assert matrix[["month", "treating_rhf", "home_rhf", "cases", "amount"]].values.tolist() == [
        ["2026-02", "HV", "HN", 1, 125.98]
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


@pytest.fixture(scope="module")
def rules_home(tmp_path_factory: pytest.TempPathFactory) -> Home:
    """The ISF test's cases for the clarified rules (``rules_patients``), March."""
    return produce_rules_cases(tmp_path_factory, "gjestepasient")


def test_mental_health_contact_and_day_treatment_at_their_isf_price(rules_home: Home) -> None:
    detail = current(rules_home, "gjestepasient_detail", "2026-03").set_index("activity_id")
    # Tromsø (HN) patients at Haukeland (HV): Q1 DPS contact 0.06 x 3,149.60 = 188.976 ->
    # 188.98; Q2 DPS day treatment 0.30 x 3,149.60 = 944.88 (somatic would be 13,432.56);
    # Bodø: R5's stay (first episode ordinary) 0.92 x 44,775.20 = 41,193.184 -> 41,193.18
    assert detail[["activity", "unit_price_nok", "settlement_share", "amount"]].to_dict(
        "index"
    ) == {
        "Q1": dict(activity="psych_tsb_outpatient", unit_price_nok=3937.0,
                   settlement_share=0.80, amount=188.98),
        "Q2": dict(activity="psych_tsb_outpatient", unit_price_nok=3937.0,
                   settlement_share=0.80, amount=944.88),
        "Q51": dict(activity="somatic", unit_price_nok=55969.0, settlement_share=0.80,
                    amount=41193.18),
    }  # fmt: skip
    matrix = current(rules_home, "gjestepasient_matrix", "2026-03")
    # one cell HV <- HN: 3 cases, 0.06 + 0.30 + 0.92 = 1.28 points,
    # 188.98 + 944.88 + 41,193.18 = 42,327.04 kr (the sum of the rounded lines)
    assert matrix[["treating_rhf", "home_rhf", "cases", "points", "amount"]].round(4).values.tolist(
    ) == [["HV", "HN", 3, 1.28, 42327.04]]  # fmt: skip
    types = query(
        rules_home,
        "SELECT table_name || '.' || column_name AS col, data_type FROM duckdb_columns() "
        "WHERE column_name IN ('amount', 'amount_private', 'amount_public', 'unit_price_nok') "
        "AND table_name IN (SELECT table_name FROM duckdb_tables())",
    )
    assert set(types["data_type"]) == {"DECIMAL(18,2)"} and len(types) == 5


def test_invalid_municipality_abroad_and_privately_paid_listed_apart(rules_home: Home) -> None:
    apart = current(rules_home, "gjestepasient_apart", "2026-03")
    got = {r.category: (r.treating_rhf, r.cases, round(r.points, 4)) for r in apart.itertuples()}
    # Q3: komNrHjem 1899 is in no municipality list (its county 18 is Nordland, Helse Nord):
    # invalid, never guessed into Helse Nord as a guest case of 0.05 x 44,775.20 = 2,238.76;
    # Q7 lives abroad (9900); R4's stay (first episode paid by an insurer, 0.92 points) would
    # have been a Helse Nord guest case: left out and counted. R6 (self-paying, at home in
    # Bergen) would never have been a case, so it is not counted here.
    assert got == {
        "invalid_municipality": ("HV", 1, 0.05),
        "abroad": ("HV", 1, 0.05),
        "paid_privately": ("HV", 1, 0.92),
    }
    lines = {m: v for step, m, v in headlines(rules_home, "2026-03") if step == "gjestepasient"}
    assert lines == {
        "guest-patient cases / settlement (NOK)": "3 / 42,327.04",
        "left out: paid by the patient or an insurer": "1 stays and contacts",
    }
