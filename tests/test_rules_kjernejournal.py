"""Kjernejournal on hand-built submissions: which contacts become rows, counted by hand.

Haukeland (public) and Aleris Bergen sentrum (private). The delivery holds fødselsnummer, so it
is read from the restricted Parquet file and its manifest, never from the warehouse (which
keeps only the counts). Haukeland then resubmits March: one visit withdrawn, one moved a day.
"""

from __future__ import annotations

import json
import stat
from datetime import date
from pathlib import Path

import pandas as pd
import pytest

from npr_pipeline.home import Home
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

SURGERY = Department("48029603", "Haukeland, kirurgisk poliklinikk")
DEPTS = [Department(HAUKELAND.resh, HAUKELAND.name), SURGERY]
F1, F2, F4, F5, F6 = (fnr(date(1970, 5, k)) for k in (1, 2, 4, 5, 6))
VALID_K3 = fnr(date(1970, 5, 3))
BAD_K3 = VALID_K3[:10] + str((int(VALID_K3[10]) + 1) % 10)  # wrong second check digit


def haukeland(resubmitted: bool = False) -> list[Patient]:
    """Haukeland's patients; the resubmission drops E42 and moves E22 from 5 to 6 March."""
    k4 = [Episode("E41", at("2026-03-10", "09:00"), at("2026-03-10", "09:20"))]
    if not resubmitted:
        k4.append(Episode("E42", at("2026-03-10", "11:00"), at("2026-03-10", "11:30"),
                          fagomrade="010", resh=SURGERY.resh))  # fmt: skip
    e22_day = "2026-03-06" if resubmitted else "2026-03-05"
    return [
        Patient("K1", F1, episodes=(
            # an inpatient stay in February: its own row, first 10 Feb, last 12 Feb
            Episode("E10", at("2026-02-10", "14:00"), at("2026-02-12", "10:00"), level="1",
                    urgency="1", diagnoses=("J189",)),
            # two visits to one place on one day: one row, contacts 2
            Episode("E11", at("2026-03-03", "09:00"), at("2026-03-03", "09:30")),
            Episode("E12", at("2026-03-03", "13:00"), at("2026-03-03", "13:30")),
            # a phone call (kontaktType 5): left out
            Episode("E13", at("2026-03-04", "10:00"), at("2026-03-04", "10:10"), contact="5"),
        )),
        Patient("K2", F2, episodes=(
            # TSB (fagområde 360 is on the exclusion list): left out
            Episode("E21", at("2026-03-05", "08:00"), at("2026-03-05", "09:00"),
                    fagomrade="360", diagnoses=("F102",)),
            Episode("E22", at(e22_day, "12:00"), at(e22_day, "12:30")),
        )),
        # an invalid fødselsnummer: the patient is excluded by the quality rules and counted
        Patient("K3", BAD_K3, episodes=(
            Episode("E30", at("2026-03-07", "09:00"), at("2026-03-07", "09:30")),
        )),
        # the same day at two departments: two places, two rows
        Patient("K4", F4, episodes=tuple(k4)),
        # missing from the ide (see ``idents``): no identity, excluded by the quality rules
        Patient("K6", F6, episodes=(
            Episode("E60", at("2026-03-08", "09:00"), at("2026-03-08", "09:30")),
        )),
    ]  # fmt: skip


def idents(patients: list[Patient]) -> list[tuple[str, str]]:
    """The ide of Haukeland's file: every patient but K6."""
    return [(p.nr, p.fnr) for p in patients if p.nr != "K6"]


ALERIS_PATIENTS = [
    # an insurer pays (debitor 60): still a contact in the summary care record (RULES.md)
    Patient("K5", F5, episodes=(
        Episode("E50", at("2026-03-20", "08:00"), at("2026-03-20", "15:00"), level="2",
                fagomrade="010", diagnoses=("K802",), procedures=("JKA21",), debitor="60"),
    )),
]  # fmt: skip


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Home:
    """March v1 from the first files, March v2 after Haukeland's resubmission."""
    root = tmp_path_factory.mktemp("kj")
    home = new_home(root, [HAUKELAND, ALERIS])
    receive(
        home,
        root / "inbox1",
        Submission(HAUKELAND, 3, 3, haukeland(), DEPTS, idents(haukeland())),
        Submission(ALERIS, 3, 3, ALERIS_PATIENTS),
    )
    assert run_step(home, "2026-03", "kjernejournal") == 1
    resubmitted = haukeland(True)
    receive(
        home, root / "inbox2", Submission(HAUKELAND, 3, 4, resubmitted, DEPTS, idents(resubmitted))
    )
    assert run_step(home, "2026-03", "kjernejournal") == 2
    return home


def _folder(home: Home) -> Path:
    return home.restricted / "kjernejournal" / "period=2026-03"


def _day(value: object) -> str:
    return pd.Timestamp(value).date().isoformat()


def _rows(home: Home, version: int) -> list[tuple]:
    frame = pd.read_parquet(_folder(home) / f"v{version:04d}.parquet")
    return [
        (r.fodselsnummer, r.institution, r.ownership, r.department, _day(r.first_date),
         _day(r.last_date), r.care_level, r.contacts)
        for r in frame.itertuples()
    ]  # fmt: skip


def test_rows_one_per_person_place_and_day(home: Home) -> None:
    hk, al, surgery = HAUKELAND.resh, ALERIS.resh, SURGERY.resh
    assert _rows(home, 1) == sorted([
        (F1, hk, "public", hk, "2026-02-10", "2026-02-12", "1", 1),  # E10, the stay
        (F1, hk, "public", hk, "2026-03-03", "2026-03-03", "3", 2),  # E11 + E12 collapse
        (F2, hk, "public", hk, "2026-03-05", "2026-03-05", "3", 1),  # E22 (E21 is TSB)
        (F4, hk, "public", hk, "2026-03-10", "2026-03-10", "3", 1),  # E41
        (F4, hk, "public", surgery, "2026-03-10", "2026-03-10", "3", 1),  # E42 elsewhere
        (F5, al, "private", al, "2026-03-20", "2026-03-20", "2", 1),  # E50, private clinic
    ], key=lambda r: (r[0], r[4], r[1], r[3]))  # fmt: skip
    # E13 (phone) and K3 (invalid number) are nowhere
    assert BAD_K3 not in {r[0] for r in _rows(home, 1)}


def test_counts_of_what_was_left_out(home: Home) -> None:
    counts = query(
        home, "SELECT * FROM kjernejournal_counts WHERE period = '2026-03' AND version = 1"
    ).iloc[0]
    # received: K1 4 + K2 2 + K3 1 + K4 2 + K6 1 + K5 1 = 11 episodes; K3's (invalid
    # fødselsnummer) and K6's (missing from the ide) are excluded by the quality rules -> 9;
    # of these E13 is indirect (1) and E21 is on the exclusion list (1); 6 rows for 4 persons
    # (F1, F2, F4, F5). Persons without a valid identity number: K3 (check digits) + K6 (not
    # in the ide) = 2, each counted under its own name.
    assert counts[[
        "episodes_received", "episodes_after_quality", "indirect_left_out",
        "exclusion_list_left_out", "without_identity", "persons_invalid_number",
        "persons_missing_from_ide", "persons_without_valid_identity", "rows", "persons",
    ]].tolist() == [11, 9, 1, 1, 0, 1, 1, 2, 6, 4]  # fmt: skip
    excluded = current(home, "kjernejournal_exclusions", "2026-03")
    assert "fodselsnummer_valid" in set(excluded["check_id"])


def test_restricted_file_and_manifest(home: Home) -> None:
    folder = _folder(home)
    manifest = json.loads((folder / "v0001.manifest.json").read_text(encoding="utf-8"))
    assert manifest["contains_fodselsnummer"] is True
    assert (manifest["step"], manifest["period"], manifest["version"], manifest["rows"]) == (
        "kjernejournal", "2026-03", 1, 6,
    )  # fmt: skip
    assert len(manifest["submissions"]) == 4
    assert {k: manifest["counts"][k] for k in (
        "persons_invalid_number", "persons_missing_from_ide", "persons_without_valid_identity"
    )} == {"persons_invalid_number": 1, "persons_missing_from_ide": 1,
           "persons_without_valid_identity": 2}  # fmt: skip
    assert stat.S_IMODE((folder / "v0001.parquet").stat().st_mode) == 0o600
    versions = query(
        home,
        "SELECT version, restricted_path FROM delivery_versions WHERE step = 'kjernejournal' "
        "ORDER BY version",
    )
    assert versions["restricted_path"].tolist() == [  # relative to HOME
        (folder / "v0001.parquet").relative_to(home.root).as_posix(),
        (folder / "v0002.parquet").relative_to(home.root).as_posix(),
    ]


def test_no_fodselsnummer_in_the_warehouse(home: Home) -> None:
    tables = query(home, "SELECT table_name FROM duckdb_tables()")["table_name"].tolist()
    assert "kjernejournal" not in tables
    numbers = {F1, F2, F4, F5, F6, BAD_K3}
    for table in tables:
        text = query(home, f'SELECT * FROM "{table}"').astype(str)
        found = {n for n in numbers if text.apply(lambda c, n=n: c.str.contains(n)).any().any()}
        assert not found, (table, found)


def test_resubmission_full_refresh(home: Home) -> None:
    hk = HAUKELAND.resh
    before, after = set(_rows(home, 1)), set(_rows(home, 2))
    # E42 was withdrawn: its row is gone; E22 moved from 5 to 6 March: its row moved
    assert before - after == {
        (F4, hk, "public", SURGERY.resh, "2026-03-10", "2026-03-10", "3", 1),
        (F2, hk, "public", hk, "2026-03-05", "2026-03-05", "3", 1),
    }
    assert after - before == {(F2, hk, "public", hk, "2026-03-06", "2026-03-06", "3", 1)}
    counts = current(home, "kjernejournal_counts", "2026-03").iloc[0]
    assert (counts["version"], counts["episodes_received"], counts["rows"]) == (2, 10, 5)
