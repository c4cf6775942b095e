"""The 2026 changes of the ordinary message (seed 000, "Nytt i 2026"), checked as data.

NACE (voluntary) on units of type behandlingssted, checked against SSB's standard as valid for
the file's period; every fagenhet with its department code (code list 3511) and its sektor by
SSB's function account plan. A hand-built delivery with one department per case goes through the
real intake; the catalogue's checks must find exactly the bad ones and pass the good ones.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

import duckdb
import pandas as pd
import pytest

from npr_pipeline import reference
from npr_pipeline.home import Home
from npr_pipeline.intake.run import intake_directory
from npr_pipeline.quality import reference_tables
from npr_pipeline.quality.catalogue import by_id
from npr_pipeline.quality.sql_engine import violation_sql
from npr_pipeline.synth import run as synth_run
from npr_pipeline.synth.generate import INVALID_AVDELING, INVALID_EVERY, generate_unit_year
from npr_pipeline.synth.model import UnitInfo
from npr_pipeline.synth.writer import FileSpec, write_submission
from tests import handbuilt as hb
from tests.intake_files import prepare_test_home
from tests.quality_files import all_violations

R = hb.HAUKELAND.resh
DEPARTMENTS = [
    hb.Department(R, "Haukeland, behandlingssted", nace="86.102", enhetstype="B"),  # good
    hb.Department(f"{R}1", "Gammel NACE", nace="86.105", enhetstype="B"),  # SN2007: ended 2024
    hb.Department(f"{R}2", "Ukjent NACE", nace="99.999", enhetstype="B"),
    hb.Department(f"{R}3", "Psykiatri voksne", sektor="641", enhetstype="F", avdeling="10"),  # good
    hb.Department(f"{R}4", "Ukjent sektor", sektor="999", enhetstype="F", avdeling="10"),
    hb.Department(f"{R}5", "Ukjent avdeling", sektor="642", enhetstype="F", avdeling="77"),
    hb.Department(f"{R}6", "Uten avdeling", sektor="651", enhetstype="F"),
    hb.Department(
        f"{R}7", "NACE på fagenhet", sektor="681", enhetstype="F", avdeling="30", nace="86.102"
    ),
    hb.Department(f"{R}8", "Uten enhetstype", sektor="642", nace="86.102"),  # as before 2026: good
]


def test_code_lists_have_validity_dates() -> None:
    """Hand-checked against Volven 1303 (SN2007) and 1305 (SN2025): section 86 was renumbered,
    so one code means different things before and after 2025 and some exist on one side only."""
    sn2025 = reference.code_list("nace", on=date(2026, 3, 31))
    sn2007 = reference.code_list("nace", on=date(2024, 6, 30))
    assert sn2025["86.102"] == "Psykiatriske sykehustjenester for voksne"  # seed 000
    assert sn2025["86.103"] == "Spesialisert rusbehandling"
    assert sn2007["86.103"] == "Andre somatiske spesialinstitusjoner"
    assert {"86.105", "86.211", "86.909"} <= set(sn2007) - set(sn2025)  # ended 2024
    assert {"86.210", "86.993"} <= set(sn2025) - set(sn2007)  # new in SN2025
    assert len(sn2025) == 20 and all(code.startswith("86.") for code in sn2025)
    assert reference.code_list("avdeling", on=date(2025, 12, 31)) == {}
    assert {"641", "642", "651", "681"} <= set(reference.code_list("sektor", on=date(2026, 1, 1)))
    rows = reference.code_list_rows("nace")
    assert rows.loc[rows["code"] == "86.105", "valid_to"].item() == pd.Timestamp("2024-12-31")


# (check, column, code, the period's last day, whether the check finds it): hand-checked.
VALIDITY_CASES = [
    ("department_nace_in_code_list", "nace", "86.210", date(2024, 12, 31), True),  # SN2025 only
    ("department_nace_in_code_list", "nace", "86.210", date(2025, 1, 31), False),
    ("department_nace_in_code_list", "nace", "86.105", date(2024, 12, 31), False),  # SN2007 only
    ("department_nace_in_code_list", "nace", "86.105", date(2026, 3, 31), True),
    ("department_nace_in_code_list", "nace", "86.103", date(2026, 3, 31), False),  # both, renamed
    ("department_avdeling_in_code_list", "avdeling", "10", date(2025, 12, 31), True),  # from 2026
    ("department_avdeling_in_code_list", "avdeling", "10", date(2026, 1, 31), False),
    ("department_sektor_in_code_list", "sektor", "641", date(2025, 12, 31), False),  # open
]


@pytest.mark.parametrize(("check_id", "column", "code", "period_to", "found"), VALIDITY_CASES)
def test_the_content_checks_use_the_code_of_the_periods_day(
    check_id: str, column: str, code: str, period_to: date, found: bool
) -> None:
    """The catalogue's own SQL in DuckDB against the registered code lists: a code is checked
    against the list valid on the last day of the file's period, not against every code."""
    con = duckdb.connect()
    reference_tables.register(con)
    con.execute(
        "CREATE TEMP TABLE ref_submission (submission_id VARCHAR, extracted DATE, period_to DATE)"
    )
    con.execute("INSERT INTO ref_submission VALUES ('S1', ?, ?)", [period_to, period_to])
    con.execute(
        "CREATE TEMP TABLE departments AS SELECT 'S1' AS submission_id, '1234567' AS reshID, "
        "CAST(NULL AS VARCHAR) AS nace, CAST(NULL AS VARCHAR) AS sektor, "
        "CAST(NULL AS VARCHAR) AS avdeling"
    )
    con.execute(f"UPDATE departments SET {column} = ?", [code])
    rows = con.execute(violation_sql(by_id(check_id), "departments")).fetchall()
    assert (len(rows) == 1) is found


def test_the_2026_department_checks_find_the_bad_codes(tmp_path: Path) -> None:
    home = hb.new_home(tmp_path, [hb.HAUKELAND])
    patient = hb.Patient("P1", hb.fnr(date(1970, 5, 1)), episodes=(
        hb.Episode("E1", hb.at("2026-03-03", "09:00"), hb.at("2026-03-03", "09:30")),
    ))  # fmt: skip
    hb.receive(home, tmp_path / "inbox", hb.Submission(hb.HAUKELAND, 3, 1, [patient], DEPARTMENTS))
    found = all_violations(home.root)
    found = found[found["table"] == "departments"]
    assert sorted(zip(found["check_id"], found["record_id"], strict=True)) == [
        ("department_avdeling_in_code_list", f"{R}5"),
        ("department_nace_in_code_list", f"{R}1"),
        ("department_nace_in_code_list", f"{R}2"),
        ("department_nace_only_on_treatment_site", f"{R}7"),
        ("department_sektor_in_code_list", f"{R}4"),
        ("fagenhet_has_sektor_and_avdeling", f"{R}6"),
    ]
    assert found["pasientNr"].isna().all()  # a department is no patient's record
    assert by_id("department_nace_in_code_list").severity == "warning"  # nace is voluntary
    assert by_id("department_sektor_in_code_list").severity == "error"


def test_synthetic_ord_files_carry_the_2026_attributes_and_their_planted_code_is_caught(
    tmp_path: Path,
) -> None:
    """npr synth's ord: the unit as behandlingssted (B, NACE), its other departments fagenheter
    (F, sektor, avdeling); the one invalid avdeling it plants is the only department finding."""
    units = reference.units()
    trusts = units[(units["unit_type"] == "trust_site") & (units["size_weight"] >= 30)]
    planted = trusts[trusts["reshID"].astype(int) % INVALID_EVERY == 0].iloc[0]
    clean = trusts[trusts["reshID"].astype(int) % INVALID_EVERY != 0].iloc[0]
    fag = set(reference.code_list("fagomrade"))
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    years = {}
    for row in (planted, clean):
        unit = UnitInfo(resh=row["reshID"], orgnr=row["orgnr"], her=row["herID"],
                        name=row["name"], unit_type="trust_site", rhf=row["rhf"],
                        komnr=row["komnr"], sector=row["sector"], fagomrade=row["fagomrade"],
                        size_weight=float(row["size_weight"]))  # fmt: skip
        years[unit.resh] = generate_unit_year(unit, 2026, 1, 3, 4, synth_run._catchment(), fag)
        for lopenr, msg in enumerate(("ord", "ide"), start=1):
            path = inbox / f"{unit.resh}_2026-01_{msg}.xml"
            write_submission(FileSpec(path, msg, 2026, 1, "58.0.1", lopenr, "utf-8", None, 3),
                             years[unit.resh])  # fmt: skip
    text = (inbox / f"{clean['reshID']}_2026-01_ord.xml").read_text(encoding="utf-8")
    assert 'enhetstype="B"' in text and 'enhetstype="F"' in text and "avdeling=" in text
    home = prepare_test_home(Home(root=tmp_path / "home"))
    summary = intake_directory(home, inbox, workers=1)
    assert {s.status for s in summary.submissions} == {"accepted"}
    found = all_violations(home.root)
    found = found[found["table"] == "departments"]
    last = years[planted["reshID"]].departments[-1]
    assert (last.enhetstype, last.avdeling) == ("F", INVALID_AVDELING)
    assert sorted(zip(found["check_id"], found["record_id"], strict=True)) == [
        ("department_avdeling_in_code_list", last.resh)
    ]
