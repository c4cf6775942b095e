"""Quality: the catalogue, its SQL engine, recall on labelled faults, no false alarms."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from npr_pipeline.home import Home
from npr_pipeline.intake.run import intake_directory
from npr_pipeline.quality.catalogue import EXPECTATIONS, load_catalogue
from npr_pipeline.quality.sql_engine import violation_sql
from tests.intake_files import prepare_test_home
from tests.quality_files import all_violations

# Where each labelled fault of `npr synth --defects` must surface: an intake reason (the file
# is refused or routed to test) or a content rule naming the record.
FILE_FAULTS = {
    "schema_violation": "schema_error",
    "truncated": "truncated",
    "wrong_version": "wrong_version",
    "unknown_sender": "unknown_sender",
    "test_orgnr": "test_orgnr",
}
RECORD_FAULTS = {
    "reversed_dates": "episode_dates_in_order",
    "unknown_icd10": "icd10_code_valid",
    "duplicate_episode_id": "episode_id_unique",
    "patient_without_ident": "patient_has_ident",
}


def _received(inbox: Path, tmp: Path) -> tuple[Home, dict[str, dict]]:
    home = prepare_test_home(Home(root=tmp / "home"))
    summary = intake_directory(home, inbox)
    return home, {s.file: s for s in summary.submissions}


@pytest.fixture(scope="module")
def clean(small_year: Path, tmp_path_factory: pytest.TempPathFactory):
    return _received(small_year / "inbox", tmp_path_factory.mktemp("clean"))


@pytest.fixture(scope="module")
def faulty(defect_year: Path, tmp_path_factory: pytest.TempPathFactory):
    return _received(defect_year / "inbox", tmp_path_factory.mktemp("faulty"))


def test_catalogue_is_complete_and_unique() -> None:
    checks = load_catalogue()
    assert len({c.id for c in checks}) == len(checks) >= 30
    assert {c.category for c in checks} == {"conformance", "completeness", "plausibility"}
    assert all(c.message and c.fix for c in checks)
    assert {c.expectation for c in checks} <= set(EXPECTATIONS)


def test_every_sql_check_compiles_against_the_lake_schema(clean) -> None:
    import duckdb

    from npr_pipeline.quality.sql_engine import register_tables

    con = duckdb.connect()
    register_tables(con, {})
    con.execute(
        "CREATE TEMP TABLE ref_submission (submission_id VARCHAR, extracted DATE, period_to DATE)"
    )
    con.execute("CREATE TEMP TABLE ref_pair (ord_sid VARCHAR, ide_sid VARCHAR)")
    for check in load_catalogue():
        if check.expectation != "python_rule":
            con.execute(f"SELECT count(*) FROM ({violation_sql(check)})").fetchone()


def test_a_clean_year_gives_no_error_findings(clean) -> None:
    home, results = clean
    assert all(s.status == "accepted" for s in results.values())
    violations = all_violations(home.root)
    assert violations[violations["severity"] == "error"].empty
    assert all(s.quality == {"errors": 0, "warnings": 0} for s in results.values() if s.quality)


def test_every_reachable_labelled_fault_is_found(defect_year: Path, faulty) -> None:
    home, results = faulty
    violations = all_violations(home.root)
    with open(defect_year / "defects.csv", encoding="utf-8") as fh:
        labels = list(csv.DictReader(fh))
    checked = content = 0
    for label in labels:
        result = results[label["file"]]
        if label["defect"] in FILE_FAULTS:
            codes = {r.code for r in result.reasons}
            assert FILE_FAULTS[label["defect"]] in codes, (label, codes)
        elif label["defect"] in RECORD_FAULTS and _reachable(label, results):
            rule = RECORD_FAULTS[label["defect"]]
            hits = violations[(violations["check_id"] == rule)]
            column = "pasientNr" if rule == "patient_has_ident" else "record_id"
            assert label["record"] in set(hits[column]), (label, rule)
            content += 1
        checked += 1
    assert checked == len(labels) and checked > 10
    assert content >= 4, "too few content faults reached the content rules to prove recall"


def _reachable(label: dict, results: dict) -> bool:
    """A content fault is findable once its file, and for ident faults its ord, is accepted."""
    if results[label["file"]].status != "accepted":
        return False
    if label["defect"] == "patient_without_ident":
        ord_file = label["file"].replace("_ide.xml", "_ord.xml")
        return results[ord_file].status == "accepted"
    return True


def test_error_findings_name_the_record_and_the_fix(faulty) -> None:
    home, _ = faulty
    errors = all_violations(home.root)
    errors = errors[errors["severity"] == "error"]
    assert not errors.empty
    assert errors["record_id"].notna().all() and errors["pasientNr"].notna().all()
    assert list(home.feedback.glob("*/XPR_ERR.xml"))


def test_results_are_in_the_warehouse(clean) -> None:
    import duckdb

    home, results = clean
    con = duckdb.connect(str(home.warehouse), read_only=True)
    try:
        rows = con.execute(
            "SELECT count(DISTINCT submission_id), count(DISTINCT check_id), "
            "count(*) FILTER (WHERE status <> 'pass') FROM quality_results"
        ).fetchall()[0]
        ledger = con.execute("SELECT count(*) FROM ledger").fetchall()[0][0]
    finally:
        con.close()
    monthly = [r for r in results.values() if r.message_type in ("NPR_ORD", "NPR_IDE")]
    assert len(monthly) < len(results)  # the small year's KPP is checked by its own catalogue
    assert rows[0] == len(monthly) and rows[1] == len(load_catalogue()) and rows[2] == 0
    assert ledger == len(results)


def test_checks_read_only_their_submissions_rows_from_a_shared_part(tmp_path: Path) -> None:
    """A part file may hold several submissions: the checks of one read its rows alone."""
    import duckdb
    import pyarrow as pa
    import pyarrow.parquet as pq

    from npr_pipeline.quality.sql_engine import register_tables
    from npr_pipeline.store.lake import schema_of

    schema = schema_of("episodes")
    rows = [{"submission_id": sid, "unit": "1", "episodeID": e} for sid, e in
            [("a", "1"), ("b", "2"), ("a", "3")]]  # fmt: skip
    part = tmp_path / "part.parquet"
    pq.write_table(pa.Table.from_pylist(rows, schema=schema), part)
    con = duckdb.connect()
    register_tables(con, {"episodes": [part]}, ["a"])
    assert con.execute('SELECT "episodeID" FROM episodes').fetchall() == [("1",), ("3",)]
    register_tables(con, {"episodes": [part]})
    assert con.execute("SELECT count(*) FROM episodes").fetchone() == (3,)
