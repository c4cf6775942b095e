"""ISF on hand-built submissions: stays, DRG, points and refund computed by hand.

2026 rates (data/reference/isf_rates.csv, both marked assumed): somatic 55,969 kr x 0.40 =
22,387.60 kr per point; outpatient mental health/TSB 3,937 kr x 0.25 = 984.25 kr per point.
Weights from the simplified grouper table (data/reference/drg_table.csv, valid_year 2026).
The same activity feeds the guest-patient settlement test (test_rules_gjestepasient.py).
"""

from __future__ import annotations

import json
from datetime import date

import pandas as pd
import pytest

from npr_pipeline.home import Home
from npr_pipeline.production.headlines import headlines
from tests.handbuilt import (
    ALERIS,
    HAUKELAND,
    Department,
    Episode,
    Patient,
    Submission,
    at,
    current,
    fnr,
    new_home,
    query,
    receive,
    run_step,
)

PSYCH_DEPT = Department("48029601", "Haukeland, DPS poliklinikk", sektor="642")
HAUKELAND_DEPTS = [Department(HAUKELAND.resh, HAUKELAND.name), PSYCH_DEPT]

# P5's radiotherapy contact; the resubmission withdraws it
E51 = Episode("E51", at("2026-03-18", "08:00"), at("2026-03-18", "08:30"), level="8",
              fagomrade="110", diagnoses=("C509",))  # fmt: skip


def haukeland(with_e51: bool = True) -> list[Patient]:
    """Haukeland's patients (komNrHjem decides the guest-patient case: see that test)."""
    return [
        # a transfer: E12 starts the day E11 ends -> one stay; main condition I219 and a
        # procedure (PCI, FNG05) in the stay -> 231A, weight 1.90
        Patient("P1", fnr(date(1950, 3, 1)), "4601", episodes=(
            Episode("E11", at("2026-03-02", "10:00"), at("2026-03-05", "12:00"), level="1",
                    urgency="1", diagnoses=("I219",), procedures=("FNG05",)),
            Episode("E12", at("2026-03-05", "12:00"), at("2026-03-09", "09:00"), level="1",
                    urgency="5", fagomrade="150", diagnoses=("I219",)),
        )),
        # Bodø (Helse Nord): a stay from 26 February to 3 March (crosses months: counted in
        # March, its discharge month) and a readmission on 6 March (2 days after 3 March + 1:
        # a new stay). Both J189, no procedure -> 233B, weight 0.92
        Patient("P2", fnr(date(1950, 3, 2)), "1804", episodes=(
            Episode("E21", at("2026-02-26", "14:00"), at("2026-03-03", "11:00"), level="1",
                    urgency="1", diagnoses=("J189",)),
            Episode("E22", at("2026-03-06", "20:00"), at("2026-03-08", "10:00"), level="1",
                    urgency="1", diagnoses=("J189",)),
        )),
        # abroad (9000); the unit sends the official grouper's DRG 238A (weight 1.90); the
        # simplified table would have said 132B (M00-M99, no procedure, inpatient: 0.75)
        Patient("P3", fnr(date(1950, 3, 3)), "9000", episodes=(
            Episode("E31", at("2026-03-10", "08:00"), at("2026-03-12", "12:00"), level="1",
                    diagnoses=("M170",), drg="238A"),
        )),
        # Tromsø (Helse Nord): outpatient contacts at the DPS (sektor 642): F329, no procedure
        # -> 059O, weight 0.04, at the mental health rate; one in February, one in March
        Patient("P4", fnr(date(1950, 3, 4)), "5501", episodes=(
            Episode("E40", at("2026-02-10", "10:00"), at("2026-02-10", "11:00"),
                    fagomrade="320", diagnoses=("F329",), resh=PSYCH_DEPT.resh),
            Episode("E41", at("2026-03-16", "10:00"), at("2026-03-16", "11:00"),
                    fagomrade="320", diagnoses=("F329",), resh=PSYCH_DEPT.resh),
        )),
        # invalid municipality (0000); care level 8 is grouped as outpatient (3): C509, no
        # procedure -> 029O, weight 0.08
        Patient("P5", fnr(date(1950, 3, 5)), "0000", episodes=(E51,) if with_e51 else ()),
    ]  # fmt: skip


# Alta (Helse Nord) at a private clinic: day treatment K802 with cholecystectomy (JKA21)
# -> 242D (K80, procedure, day), weight 0.78. Its episode id E11 is also Haukeland's: ids are
# the unit's own, so the two must never be mixed up.
ALERIS_PATIENTS = [
    Patient("P6", fnr(date(1950, 3, 6)), "5601", episodes=(
        Episode("E11", at("2026-03-20", "08:00"), at("2026-03-20", "15:00"), level="2",
                fagomrade="010", diagnoses=("K802",), procedures=("JKA21",)),
    )),
]  # fmt: skip


def first_files() -> list[Submission]:
    """Both units' March files (lopenr 3)."""
    return [
        Submission(HAUKELAND, 3, 3, haukeland(), HAUKELAND_DEPTS),
        Submission(ALERIS, 3, 3, ALERIS_PATIENTS),
    ]


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Home:
    """March v1; then Haukeland resubmits March without E51 and March v2 is produced."""
    root = tmp_path_factory.mktemp("isf")
    home = new_home(root, [HAUKELAND, ALERIS])
    receive(home, root / "inbox1", *first_files())
    assert run_step(home, "2026-03", "isf") == 1
    receive(home, root / "inbox2", Submission(HAUKELAND, 3, 4, haukeland(False), HAUKELAND_DEPTS))
    assert run_step(home, "2026-03", "isf") == 2
    return home


def _detail(home: Home, version: int) -> pd.DataFrame:
    """Detail lines indexed "HK E11" / "AL E11": unit and activity id together."""
    rows = query(
        home,
        "SELECT * FROM isf_detail WHERE period = '2026-03' AND version = ? ORDER BY activity_id",
        [version],
    )
    label = rows["unit"].map({HAUKELAND.resh: "HK", ALERIS.resh: "AL"})
    return rows.set_index(label + " " + rows["activity_id"]).sort_index()


def test_detail_lines(home: Home) -> None:
    detail = _detail(home, 1)
    columns = ["kind", "episodes", "episode_count", "level", "drg", "drg_source", "points",
               "activity", "refund", "month"]  # fmt: skip
    assert detail[columns].to_dict("index") == {
        # 1.90 x 22,387.60 = 42,536.44
        "HK E11": dict(kind="stay", episodes="E11 E12", episode_count=2, level="1", drg="231A",
                    drg_source="simplified", points=1.90, activity="somatic",
                    refund=42536.44, month="2026-03"),
        # 0.92 x 22,387.60 = 20,596.592 -> 20,596.59 (each of P2's two stays)
        "HK E21": dict(kind="stay", episodes="E21", episode_count=1, level="1", drg="233B",
                    drg_source="simplified", points=0.92, activity="somatic",
                    refund=20596.59, month="2026-03"),
        "HK E22": dict(kind="stay", episodes="E22", episode_count=1, level="1", drg="233B",
                    drg_source="simplified", points=0.92, activity="somatic",
                    refund=20596.59, month="2026-03"),
        # official 238A: 1.90 x 22,387.60 = 42,536.44
        "HK E31": dict(kind="stay", episodes="E31", episode_count=1, level="1", drg="238A",
                    drg_source="official", points=1.90, activity="somatic",
                    refund=42536.44, month="2026-03"),
        # 0.04 x 3,937 x 0.25 = 39.37 (E40 is February: outside the March window)
        "HK E41": dict(kind="contact", episodes="E41", episode_count=1, level="3", drg="059O",
                    drg_source="simplified", points=0.04, activity="psych_tsb_outpatient",
                    refund=39.37, month="2026-03"),
        # care level 8 as 3: 0.08 x 22,387.60 = 1,791.008 -> 1,791.01
        "HK E51": dict(kind="contact", episodes="E51", episode_count=1, level="3", drg="029O",
                    drg_source="simplified", points=0.08, activity="somatic",
                    refund=1791.01, month="2026-03"),
        # 0.78 x 22,387.60 = 17,462.328 -> 17,462.33
        "AL E11": dict(kind="contact", episodes="E11", episode_count=1, level="2", drg="242D",
                    drg_source="simplified", points=0.78, activity="somatic",
                    refund=17462.33, month="2026-03"),
    }  # fmt: skip
    assert detail["rate_assumed"].all()  # 2026 rates are assumptions: every row says so
    assert detail.loc["AL E11", "ownership"] == "private"
    assert (detail.drop(index="AL E11")["ownership"] == "public").all()
    assert detail.loc["HK E41", ["unit_price_nok", "refund_share"]].tolist() == [3937.0, 0.25]
    assert detail.loc["HK E11", ["unit_price_nok", "refund_share"]].tolist() == [55969.0, 0.40]
    assert str(detail.loc["HK E21", "start_time"]) == "2026-02-26 14:00:00"


def _summary(home: Home, version: int, month: str) -> dict[tuple[str, str], tuple]:
    rows = query(
        home,
        "SELECT * FROM isf_summary WHERE period = '2026-03' AND version = ? AND month = ?",
        [version, month],
    )
    return {
        (r.level, r.key): (r.stays, r.contacts, round(r.points, 4), r.refund,
                           r.refund_private, r.refund_public)
        for r in rows.itertuples()
    }  # fmt: skip


def test_summary_per_unit_trust_rhf_split_public_private(home: Home) -> None:
    period = _summary(home, 1, "period")
    # Haukeland: 4 stays (E11+E12, E21, E22, E31), 2 contacts (E41, E51);
    # points 1.90 + 0.92 + 0.92 + 1.90 + 0.04 + 0.08 = 5.76;
    # refund 42,536.44 x 2 + 20,596.59 x 2 + 39.37 + 1,791.01 = 128,096.44
    assert period[("unit", HAUKELAND.resh)][:4] == (4, 2, 5.76, 128096.44)
    assert period[("trust", "Helse Bergen HF")][:4] == (4, 2, 5.76, 128096.44)
    # Aleris: 1 contact, 0.78 points, 17,462.33 kr, all of it private
    assert period[("unit", ALERIS.resh)][:4] == (0, 1, 0.78, 17462.33)
    # Helse Vest: 128,096.44 + 17,462.33 = 145,558.77; public / private kept apart
    assert period[("rhf", "HV")] == (4, 3, 6.54, 145558.77, 17462.33, 128096.44)
    assert period[("all", "all")] == period[("rhf", "HV")]
    # Aleris has no health trust: its trust row has an empty key (documented)
    assert period[("trust", "")][:4] == (0, 1, 0.78, 17462.33)
    assert pd.isna(period[("unit", HAUKELAND.resh)][4])  # no private refund at Haukeland


def test_year_to_date_by_month(home: Home) -> None:
    # February: only E40 (0.04 points, 39.37 kr); the stay of 26 Feb - 3 Mar is March's
    february = _summary(home, 1, "2026-02")
    assert february[("unit", HAUKELAND.resh)][:4] == (0, 1, 0.04, 39.37)
    assert ("unit", ALERIS.resh) not in february
    march = _summary(home, 1, "2026-03")
    assert march[("rhf", "HV")][:4] == (4, 3, 6.54, 145558.77)
    # year to date = February + March: 145,558.77 + 39.37 = 145,598.14
    assert _summary(home, 1, "year_to_date")[("rhf", "HV")][:4] == (4, 4, 6.58, 145598.14)


def test_withdrawn_episode_is_gone_from_the_new_version(home: Home) -> None:
    before, after = _detail(home, 1), _detail(home, 2)
    assert set(before.index) - set(after.index) == {"HK E51"}
    columns = ["drg", "points", "refund"]
    assert before.drop(index="HK E51")[columns].equals(after[columns])
    # Haukeland without E51: 5.76 - 0.08 = 5.68 points, 128,096.44 - 1,791.01 = 126,305.43 kr
    assert _summary(home, 2, "period")[("unit", HAUKELAND.resh)][:4] == (4, 1, 5.68, 126305.43)
    now = current(home, "isf_detail", "2026-03")
    assert (now["version"] == 2).all() and "E51" not in set(now["activity_id"])


def test_delivery_versions_and_exclusions(home: Home) -> None:
    versions = query(
        home,
        "SELECT * FROM delivery_versions WHERE step = 'isf' AND period = '2026-03' "
        "ORDER BY version",
    )
    assert versions["version"].tolist() == [1, 2]
    assert json.loads(versions["tables"].iloc[0])["isf_detail"] == 7
    assert json.loads(versions["tables"].iloc[1])["isf_detail"] == 6
    assert current(home, "isf_exclusions", "2026-03").empty  # nothing left out


# -- RULES.md, clarified: exact money, activity kind, who pays --------------------------------
def rules_patients() -> list[Patient]:
    """Haukeland's March cases for the clarified rules (komNrHjem matters for the settlement)."""
    dps = PSYCH_DEPT.resh
    return [
        # Tromsø: DPS outpatient contact with a procedure: F329 -> 058O, 0.06 points, mental
        # health rate: 0.06 x 3,937 x 0.25 = 59.055 -> 59.06 (binary floating point gave 59.05)
        Patient("R1", fnr(date(1951, 4, 1)), "5501", episodes=(
            Episode("Q1", at("2026-03-09", "10:00"), at("2026-03-09", "11:00"), fagomrade="320",
                    diagnoses=("F329",), procedures=("ZXA10",), resh=dps),
        )),
        # Tromsø: DPS day treatment (care level 2): F329, no procedure -> 054D, 0.30 points,
        # mental health rate (RULES.md: care level 2, 3 or 8): 0.30 x 984.25 = 295.275 -> 295.28
        Patient("R2", fnr(date(1951, 4, 2)), "5501", episodes=(
            Episode("Q2", at("2026-03-10", "08:00"), at("2026-03-10", "15:00"), level="2",
                    fagomrade="320", diagnoses=("F329",), resh=dps),
        )),
        # 1899 is not a municipality (county 18, Nordland, is real): M171 outpatient -> 139O,
        # 0.05 x 22,387.60 = 1,119.38 in ISF; listed apart in the settlement, never guessed
        Patient("R3", fnr(date(1951, 4, 3)), "1899", episodes=(
            Episode("Q3", at("2026-03-11", "09:00"), at("2026-03-11", "09:30")),
        )),
        # Bodø: a stay whose first episode an insurer pays (debitor 60): the stay is left out
        Patient("R4", fnr(date(1951, 4, 4)), "1804", episodes=(
            Episode("Q41", at("2026-03-02", "10:00"), at("2026-03-04", "12:00"), level="1",
                    diagnoses=("J189",), debitor="60"),
            Episode("Q42", at("2026-03-04", "12:00"), at("2026-03-06", "10:00"), level="1",
                    urgency="5", diagnoses=("J189",)),
        )),
        # Bodø: a stay whose first episode is ordinary (its second is self-pay, 30): the stay
        # counts: J189 inpatient -> 233B, 0.92 x 22,387.60 = 20,596.592 -> 20,596.59
        Patient("R5", fnr(date(1951, 4, 5)), "1804", episodes=(
            Episode("Q51", at("2026-03-16", "10:00"), at("2026-03-18", "12:00"), level="1",
                    diagnoses=("J189",)),
            Episode("Q52", at("2026-03-18", "12:00"), at("2026-03-20", "10:00"), level="1",
                    urgency="5", diagnoses=("J189",), debitor="30"),
        )),
        # Bergen: a self-paying patient (30) at home: left out of ISF
        Patient("R6", fnr(date(1951, 4, 6)), "4601", episodes=(
            Episode("Q6", at("2026-03-12", "09:00"), at("2026-03-12", "09:30"), debitor="30"),
        )),
        # abroad (9900): M171 outpatient -> 139O, 1,119.38 in ISF; apart in the settlement
        Patient("R7", fnr(date(1951, 4, 7)), "9900", episodes=(
            Episode("Q7", at("2026-03-13", "09:00"), at("2026-03-13", "09:30")),
        )),
    ]  # fmt: skip


def produce_rules_cases(tmp_path_factory: pytest.TempPathFactory, step: str) -> Home:
    """A HOME with Haukeland's March file of ``rules_patients`` and ``step`` produced (v1)."""
    root = tmp_path_factory.mktemp(f"{step}-rules")
    home = new_home(root, [HAUKELAND])
    receive(home, root / "inbox", Submission(HAUKELAND, 3, 3, rules_patients(), HAUKELAND_DEPTS))
    assert run_step(home, "2026-03", step) == 1
    return home


@pytest.fixture(scope="module")
def rules_home(tmp_path_factory: pytest.TempPathFactory) -> Home:
    return produce_rules_cases(tmp_path_factory, "isf")


def test_money_is_exact_and_rounded_half_up_per_line(rules_home: Home) -> None:
    detail = current(rules_home, "isf_detail", "2026-03").set_index("activity_id")
    got = detail[["drg", "points", "activity", "refund"]].to_dict("index")
    assert got == {
        "Q1": dict(drg="058O", points=0.06, activity="psych_tsb_outpatient", refund=59.06),
        "Q2": dict(drg="054D", points=0.30, activity="psych_tsb_outpatient", refund=295.28),
        "Q3": dict(drg="139O", points=0.05, activity="somatic", refund=1119.38),
        "Q51": dict(drg="233B", points=0.92, activity="somatic", refund=20596.59),
        "Q7": dict(drg="139O", points=0.05, activity="somatic", refund=1119.38),
    }
    assert detail.loc["Q51", "episodes"] == "Q51 Q52"
    # the total is the sum of the rounded lines: 59.06 + 295.28 + 1,119.38 + 20,596.59 +
    # 1,119.38 = 23,189.69 (the unrounded sum 23,189.682 would round to 23,189.68); points
    # 0.06 + 0.30 + 0.05 + 0.92 + 0.05 = 1.38
    row = query(
        rules_home,
        "SELECT * FROM isf_summary_current WHERE level = 'all' AND month = 'period'",
    ).iloc[0]
    assert (row["stays"], row["contacts"], round(row["points"], 4), row["refund"]) == (
        1, 4, 1.38, 23189.69,
    )  # fmt: skip


def test_money_columns_are_decimal_in_the_warehouse(rules_home: Home) -> None:
    types = query(
        rules_home,
        "SELECT table_name || '.' || column_name AS col, data_type FROM duckdb_columns() "
        "WHERE table_name LIKE 'isf_%'",
    ).set_index("col")["data_type"]
    money = ["isf_detail.refund", "isf_detail.unit_price_nok", "isf_summary.refund",
             "isf_summary.refund_private", "isf_summary.refund_public"]  # fmt: skip
    assert set(types[money]) == {"DECIMAL(18,2)"}
    assert types["isf_detail.refund_share"] == "DECIMAL(9,4)"
    exact = query(rules_home, "SELECT refund FROM isf_detail WHERE activity_id = 'Q1'")
    assert exact["refund"].iloc[0] == 59.06


def test_activity_paid_by_the_patient_or_an_insurer_is_left_out_and_counted(
    rules_home: Home,
) -> None:
    detail = current(rules_home, "isf_detail", "2026-03")
    # R4's stay (first episode: insurer) and R6's self-paid contact are not in ISF; R5's stay
    # counts (its first episode is ordinary, whoever pays the second)
    assert not {"Q41", "Q6"} & set(detail["activity_id"])
    summary = query(
        rules_home, "SELECT * FROM isf_summary_current WHERE month = 'period'"
    ).set_index(["level", "key"])
    assert summary.loc[("all", "all"), "left_out_paid_privately"] == 2
    assert summary.loc[("unit", HAUKELAND.resh), "left_out_paid_privately"] == 2
    lines = dict(
        (measure, value) for step, measure, value in headlines(rules_home, "2026-03")
        if step == "isf"
    )  # fmt: skip
    assert lines["left out: paid by the patient or an insurer"] == "2 stays and contacts"
