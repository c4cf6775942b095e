"""Ownership and financing kept apart in every delivery, on hand-built March files.

Three Helse Vest-area units: Haukeland (public), Aleris Bergen sentrum (private, works under a
Helse Vest agreement) and Privatklinikken Bryggen (private, privately funded, no RHF
agreement: a test-only registry row, ``handbuilt.PRIVATE_PROVIDER_ROW``). Each treats patients
its owner's way and the other way: self-paying patients (debitor 30, 32) and an insurer's (60)
at the public hospital and the clinics, publicly paid contacts at both private units (ordinary,
1; and Helfo after a fristbrudd, 70, at Bryggen). Every outpatient contact here is M171 without
procedure -> 139O, 0.05 points; somatic 2026 rate 55,969 kr (refund share 0.40: 0.05 x
22,387.60 = 1,119.38 kr; settlement share 0.80).

Ownership x financing of the contacts in March (the hand count every test below starts from):

    ownership \\ financing   public   private   all
    public (Haukeland)           6        5      11
    private (Aleris+Bryggen)  5+1        2+3     11
    all                         12       10      22

and one stay, publicly paid at Haukeland (Bodø patient, J189 -> 233B, 0.92 points).
"""

from __future__ import annotations

from datetime import date

import pytest

from npr_pipeline.home import Home
from npr_pipeline.production.headlines import headlines
from tests import handbuilt as hb
from tests import test_rules_isf as isf_case
from tests.handbuilt import ALERIS, BRYGGEN, HAUKELAND, Episode, Patient, Submission


def contacts(prefix: str, day: int, payers: list[str], komnr: str = "4601") -> list[Patient]:
    """One patient per payer, each with one outpatient M171 contact on 2026-03-``day``."""
    return [
        Patient(f"{prefix}{i}", hb.fnr(date(1960, 5, day), i), komnr, episodes=(
            Episode(f"{prefix}E{i}", hb.at(f"2026-03-{day:02d}", "09:00"),
                    hb.at(f"2026-03-{day:02d}", "09:30"), debitor=payer),
        ))
        for i, payer in enumerate(payers, start=1)
    ]  # fmt: skip


# Haukeland: 6 publicly paid contacts and 5 paid by the patient; one publicly paid stay of a
# patient from Bodø (Helse Nord): a guest-patient case
HAUKELAND_PATIENTS = [
    *contacts("H", 2, ["1"] * 6 + ["30"] * 5),
    Patient("HS", hb.fnr(date(1961, 1, 1)), "1804", episodes=(
        Episode("HSE", hb.at("2026-03-03", "10:00"), hb.at("2026-03-05", "12:00"), level="1",
                urgency="1", diagnoses=("J189",)),
    )),
]  # fmt: skip
# Aleris (agreement with Helse Vest): the ISF test's publicly paid day treatment of a patient
# from Alta (Helse Nord: a guest-patient case; K802 + JKA21 -> 242D, 0.78), 4 publicly paid
# contacts, 2 an insurer pays
ALERIS_PATIENTS = [*isf_case.ALERIS_PATIENTS, *contacts("A", 11, ["1"] * 4 + ["60"] * 2)]
# Bryggen (no agreement): 3 contacts the patients pay, 1 Helfo pays after a fristbrudd
BRYGGEN_PATIENTS = contacts("B", 12, ["30", "30", "32", "70"])


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Home:
    """The three units' March files; ISF, the settlement and kjernejournal for 2026-03."""
    root = tmp_path_factory.mktemp("public-private")
    home = hb.new_home(root, [HAUKELAND, ALERIS, BRYGGEN])
    hb.receive(
        home,
        root / "inbox",
        Submission(HAUKELAND, 3, 3, HAUKELAND_PATIENTS),
        Submission(ALERIS, 3, 3, ALERIS_PATIENTS),
        Submission(BRYGGEN, 3, 3, BRYGGEN_PATIENTS),
    )
    for step in ("isf", "gjestepasient", "kjernejournal"):
        assert hb.run_step(home, "2026-03", step) == 1
    return home


def _cells(home: Home) -> dict[tuple[str, str, str], tuple[object, object]]:
    table = hb.current(home, "isf_activity", "2026-03")
    return {
        (r.kind, r.ownership, r.financing): (
            None if r.suppressed else int(r.activities),
            None if r.suppressed else round(r.points, 4),
        )
        for r in table.itertuples()
    }


def test_activity_table_crosses_ownership_and_financing(home: Home) -> None:
    cells = _cells(home)
    # contacts: the table of the module docstring; points 0.05 each, and Aleris' day treatment
    # 0.78: private owner x public financing 0.78 + 4 x 0.05 + 0.05 (Bryggen's Helfo) = 1.03
    assert {k[1:]: v for k, v in cells.items() if k[0] == "contact"} == {
        ("public", "public"): (6, 0.30), ("public", "private"): (5, 0.25),
        ("public", "all"): (11, 0.55),
        ("private", "public"): (6, 1.03), ("private", "private"): (5, 0.25),
        ("private", "all"): (11, 1.28),
        ("all", "public"): (12, 1.33), ("all", "private"): (10, 0.50), ("all", "all"): (22, 1.83),
    }  # fmt: skip


def test_a_single_stay_is_suppressed_with_every_total_that_gives_it_away(home: Home) -> None:
    stays = {k[1:]: v for k, v in _cells(home).items() if k[0] == "stay"}
    # one stay (public x public): 1 < 5 is hidden, and so are the totals that equal it (its
    # row, its column, the grand total); the zeros beside it give nothing away
    hidden = {k for k, v in stays.items() if v == (None, None)}
    assert hidden == {("public", "public"), ("public", "all"), ("all", "public"), ("all", "all")}
    assert {k: v for k, v in stays.items() if k not in hidden} == {
        ("public", "private"): (0, 0.0), ("private", "public"): (0, 0.0),
        ("private", "private"): (0, 0.0), ("private", "all"): (0, 0.0),
        ("all", "private"): (0, 0.0),
    }  # fmt: skip
    assert set(hb.current(home, "isf_activity", "2026-03")["status"]) == {"preliminary"}


def test_isf_counts_what_it_leaves_out_per_ownership(home: Home) -> None:
    summary = hb.current(home, "isf_summary", "2026-03")
    period = summary[summary["month"] == "period"].set_index(["level", "key"])
    columns = ["stays", "contacts", "points", "refund", "left_out_paid_privately"]
    rows = period[columns].itertuples(index=False)
    got = {k: tuple(round(v, 4) if isinstance(v, float) else v for v in row)
           for k, row in zip(period.index, rows, strict=True)}  # fmt: skip
    # public units: the stay 0.92 x 22,387.60 = 20,596.592 -> 20,596.59 and 6 contacts of
    # 1,119.38: 27,312.87; the 5 self-paying patients left out
    assert got[("ownership", "public")] == (1, 6, 1.22, 27312.87, 5)
    # private units: Aleris' day treatment 0.78 x 22,387.60 = 17,462.328 -> 17,462.33, its 4
    # contacts and Bryggen's Helfo contact (public money, even without an agreement): 5 x
    # 1,119.38; 23,059.23. Left out: Aleris' 2 insured and Bryggen's 3 self-paid
    assert got[("ownership", "private")] == (0, 6, 1.03, 23059.23, 5)
    assert got[("all", "all")] == (1, 12, 2.25, 50372.10, 10)
    lines = {measure: value for step, measure, value in headlines(home, "2026-03") if step == "isf"}
    assert lines["left out: paid by the patient or an insurer"] == "10 stays and contacts"
    assert lines["of which at public / private units"] == "5 / 5"
    detail = hb.current(home, "isf_detail", "2026-03").set_index("activity_id")
    assert detail.loc["BE4", ["unit", "ownership", "rhf"]].tolist() == [BRYGGEN.resh, "private", ""]


def test_settlement_has_no_treating_region_for_a_provider_without_agreement(home: Home) -> None:
    matrix = hb.current(home, "gjestepasient_matrix", "2026-03")
    # Haukeland's Bodø stay 0.92 x 44,775.20 = 41,193.18 and Aleris' Alta day treatment
    # 0.78 x 44,775.20 = 34,924.66: Helse Nord pays Helse Vest 76,117.84
    assert [(r.treating_rhf, r.home_rhf, r.cases, r.cases_private, r.amount, r.amount_private)
            for r in matrix.itertuples()] == [("HV", "HN", 2, 1, 76117.84, 34924.66)]  # fmt: skip
    apart = hb.current(home, "gjestepasient_apart", "2026-03")
    # Bryggen's Helfo contact is publicly paid but has no treating region: listed apart,
    # counted, never guessed into Helse Vest; its 3 self-paid contacts are left out as paid
    # privately (they too would have had no region)
    assert sorted(
        (r.category, r.treating_rhf, r.cases, r.cases_private, round(r.points, 4))
        for r in apart.itertuples()
    ) == [("no_treating_region", None, 1, 1, 0.05), ("paid_privately", None, 3, 3, 0.15)]


def test_kjernejournal_delivers_privately_financed_contacts_and_counts_both_axes(
    home: Home,
) -> None:
    counts = hb.current(home, "kjernejournal_counts", "2026-03").iloc[0]
    # every contact is delivered, whoever pays: public units 7 publicly financed (6 contacts
    # and the stay) and 5 self-paid; private units 6 and 5, as in the activity table
    assert counts[[
        "contacts_public_units_public_financing", "contacts_public_units_private_financing",
        "contacts_private_units_public_financing", "contacts_private_units_private_financing",
    ]].tolist() == [7, 5, 6, 5]  # fmt: skip
    # one person, one contact, one row each: Haukeland 12, Aleris 7, Bryggen 4
    assert (counts["rows"], counts["persons"]) == (23, 23)
