"""Two engines, one catalogue: the SQL engine and the GX suites find the same violations.

Both run every catalogue check over the same DuckDB file: the input snapshot of a synthetic
period with injected defects (``npr synth --defects``), once as production reads it (error
records excluded) and once before exclusion (every injected defect still there, plus empty
strings and NULLs in one column). Per check the violation counts must be equal, and so must the
verdict: the catalogue's threshold is a share of all rows in both engines. Two checks are added
for the differences the engines used to have (an empty string is missing; the denominator of
the threshold). The one explicit exception, tested below: the checks over fødselsnummer
(``fodselsnummer_valid``, a ``python_rule``, and ``contact_before_birth``, a ``vault_rows``
query) run in the SQL engine only, per submission, because the numbers they read stay in the
identity vault and the snapshot GX reads has none.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import duckdb
import pytest

from npr_pipeline.home import Home
from npr_pipeline.periods import Period
from npr_pipeline.production.input_checks import GX_TABLES
from npr_pipeline.production.inputs import period_input, register_period_views
from npr_pipeline.production.snapshot import build_snapshot, register_lineage, snapshot_path
from npr_pipeline.quality.catalogue import Check, load_catalogue
from npr_pipeline.quality.gx_suite import (
    NOT_IN_GX,
    CheckResult,
    record_keys,
    run_suites,
    to_expectation,
)
from npr_pipeline.quality.sql_engine import run_checks
from npr_pipeline.store.lake import TABLES
from npr_pipeline.store.ledger import current_submissions, load_ledger
from tests.intake_files import home_copy

PERIOD = Period.parse("2026-03")
BLANKS = 7  # episodes whose komNrHjem becomes '' (and as many more NULL)
# Beside the synthetic defects, a few rows broken for every check (table, condition, change).
DEFECTS = [
    ("diagnoses", "kodeverk = 'D'", "\"kodeNr\" = 'XXX9'"),
    ("diagnoses", "TRUE", "kodeverk = 'Q'"),
    ("episodes", "TRUE", "\"utDatoTid\" = \"innDatoTid\" - INTERVAL 1 DAY"),
    ("episodes", "TRUE", "\"innDatoTid\" = TIMESTAMP '1899-12-31 10:00'"),
    ("episodes", "TRUE", "\"utDatoTid\" = TIMESTAMP '2031-01-01 10:00'"),
    ("episodes", "TRUE", "omsorgsniva = '7'"),
    ("episodes", "TRUE", "\"innmateHast\" = '9'"),
    ("episodes", "TRUE", "\"kontaktType\" = '98'"),
    ("episodes", "TRUE", "debitor = '999'"),
    ("episodes", "TRUE", "fagomrade = '998'"),
    ("episodes", "TRUE", "\"reshID\" = '00000000'"),
    ("episodes", "TRUE", "omsorgsniva = '1', \"utDatoTid\" = \"innDatoTid\" + INTERVAL 400 DAY"),
    ("episodes", "TRUE", "omsorgsniva = '3', \"utDatoTid\" = \"innDatoTid\" + INTERVAL 1 DAY"),
    ("idents", "TRUE", "pid = 'X' || pid"),
    ("patients", "TRUE", "kjonn = '7'"),
    ("patients", "TRUE", "fodselsar = 1850"),
    ("patients", "TRUE", "\"komNrHjem\" = '0000'"),
    ("procedures", "TRUE", "kodeverk = 'Z'"),
    ("procedures", "kodeverk = 'K'", "\"kodeNr\" = '1234'"),
    ("referrals", "TRUE", "ansiennitetsdato = \"mottattDato\" + 5"),
    ("referrals", "vurderingsdato IS NOT NULL", "vurderingsdato = \"mottattDato\" - 3"),
    ("referrals", "tjenestestart IS NOT NULL AND vurderingsdato IS NOT NULL",
     "tjenestestart = vurderingsdato - 2"),
    ("referrals", "avviklingsdato IS NOT NULL", "avviklingsdato = ansiennitetsdato - 1"),
    ("referrals", "TRUE", "ansiennitetsdato = DATE '1899-01-01'"),
    ("referrals", "TRUE", "\"mottattDato\" = DATE '2031-01-01'"),
    ("referrals", "avviklingskode IS NOT NULL", "avviklingskode = '77'"),
    ("referrals", "TRUE", "fagomrade = '998'"),
    ("referrals", "tjenestestart IS NOT NULL", "avviklingskode = '2'"),
]  # fmt: skip


@pytest.fixture(scope="module")
def received(received_defect_year: Path, tmp_path_factory: pytest.TempPathFactory) -> Home:
    return home_copy(received_defect_year, tmp_path_factory.mktemp("engines") / "home")


@pytest.fixture(scope="module")
def snapshot(received: Home, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The period's snapshot with every unit's newest ord and newest ide, paired or not.

    The gate keeps units without a complete delivery (most units of the defect year) out of the
    real snapshot, and production pairs an ord only with the ide of its own data end; here each
    unit's newest files of either kind stay in, so every check meets data and the ident checks
    meet ides beside ords they do not match.
    """
    build_snapshot(received, PERIOD)
    path = tmp_path_factory.mktemp("engines-all") / "all_units.duckdb"
    shutil.copyfile(snapshot_path(received, PERIOD), path)
    with duckdb.connect(str(path)) as con:
        ledger = load_ledger(received)
        newest = current_submissions(ledger.loc[ledger["year"] == PERIOD.year])
        covers = newest["period_to"] >= PERIOD.end.isoformat()
        inputs = period_input(ledger, PERIOD, current=newest.assign(covers=covers))
        register_period_views(con, received, inputs, materialise=True, identity_numbers=False)
        register_lineage(con, inputs)
        assert con.execute("SELECT count(*) FROM procedures").fetchone()[0] > 0
    return path


@pytest.fixture(scope="module")
def before_exclusion(snapshot: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The snapshot with every lake table holding its rows before exclusion, blanks added."""
    path = tmp_path_factory.mktemp("engines-raw") / "before_exclusion.duckdb"
    shutil.copyfile(snapshot, path)
    with duckdb.connect(str(path)) as con:
        for table in TABLES:
            con.execute(f"CREATE OR REPLACE TABLE {table} AS SELECT * FROM raw_{table}")
        con.execute(
            """UPDATE episodes SET "komNrHjem" = CASE WHEN rowid < 10 + ? THEN '' END
               WHERE rowid BETWEEN 10 AND 9 + 2 * ?""",
            [BLANKS, BLANKS],
        )
        for n, (table, where, change) in enumerate(DEFECTS):
            con.execute(
                f"UPDATE {table} SET {change} WHERE rowid IN (SELECT rowid FROM {table} "
                f"WHERE {where} ORDER BY rowid LIMIT 2 OFFSET {100 + 3 * n})"
            )
        con.execute("INSERT INTO episodes SELECT * FROM episodes WHERE rowid IN (60, 61)")
        con.execute(  # an inpatient stay without its main condition
            """DELETE FROM diagnoses WHERE "tilstNr" = 1 AND (submission_id, "episodeID") IN
               (SELECT submission_id, "episodeID" FROM episodes WHERE omsorgsniva = '1'
                ORDER BY rowid LIMIT 2)"""
        )
    return path


def _extra(cid: str, table: str, expectation: str, threshold: float, **kwargs) -> Check:
    base = next(c for c in load_catalogue() if c.table == table)
    return base.model_copy(
        update={
            "id": cid,
            "threshold": threshold,
            "expectation": expectation,
            "kwargs": kwargs,
        }
    )


def _denominator_check(db: Path) -> Check:
    """Wait-end codes but one: a threshold between the share of all rows and of non-missing
    values, so a share of non-missing values (GX's ``mostly``) would fail it and ours passes."""
    with duckdb.connect(str(db), read_only=True) as con:
        code, bad, rows, present = con.execute(
            """SELECT avviklingskode, count(*) AS n,
                      (SELECT count(*) FROM referrals),
                      (SELECT count(avviklingskode) FROM referrals)
               FROM referrals WHERE avviklingskode IS NOT NULL
               GROUP BY 1 ORDER BY n, 1 LIMIT 1"""
        ).fetchone()
    assert present < rows, "no missing avviklingskode: the denominator case is not exercised"
    codes = [str(c) for c in range(100) if str(c) != code]
    threshold = (bad / rows + bad / present) / 2
    return _extra(
        "end_code_share", "referrals", "expect_column_values_to_be_in_set", threshold,
        column="avviklingskode", value_set=codes,
    )  # fmt: skip


def _sql_engine(db: Path, checks: list[Check]) -> dict[str, int]:
    """Violations per check, as the per-submission engine finds them."""
    with duckdb.connect(str(db), read_only=True) as con:
        _, violations = run_checks(con, checks, allow_synthetic_fnr=True)
        rows = {t: con.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in GX_TABLES}
    counts = violations.groupby("check_id").size()
    return {c.id: int(counts.get(c.id, 0)) for c in checks}, rows


def _both(db: Path, checks: list[Check]) -> tuple[dict[str, int], dict[str, CheckResult], dict]:
    by_sql, rows = _sql_engine(db, checks)
    by_gx = {r.check_id: r for r in run_suites(db, checks, GX_TABLES)}
    return by_sql, by_gx, rows


def _agree(db: Path, checks: list[Check]) -> dict[str, int]:
    by_sql, by_gx, rows = _both(db, checks)
    assert set(by_gx) == {c.id for c in checks}
    differences = {
        c.id: {"sql": by_sql[c.id], "gx": by_gx[c.id].unexpected_count}
        for c in checks
        if by_sql[c.id] != by_gx[c.id].unexpected_count or by_gx[c.id].error
    }
    assert not differences, differences
    verdicts = {
        c.id: by_gx[c.id].success
        for c in checks
        if by_gx[c.id].success != c.tolerates(by_sql[c.id], rows[c.table])
        or by_gx[c.id].element_count != rows[c.table]
    }
    assert not verdicts, verdicts
    return by_sql


def _gx_checks() -> list[Check]:
    """The checks the period's GX suites run: those of the tables production validates."""
    return [c for c in load_catalogue() if c.expectation not in NOT_IN_GX and c.table in GX_TABLES]


def test_engines_agree_on_the_checked_snapshot(snapshot: Path) -> None:
    """What production reads: error records are gone, warnings and cross-table rules remain."""
    found = _agree(snapshot, _gx_checks())
    assert any(found.values()), "no violations at all: the comparison says nothing"


def test_engines_agree_before_exclusion(before_exclusion: Path) -> None:
    """Every injected defect, an empty string and NULL as missing, the threshold's share."""
    extras = [
        _extra("municipality_present", "episodes", "expect_column_values_to_not_be_null", 0.0,
               column="komNrHjem"),
        _denominator_check(before_exclusion),
    ]  # fmt: skip
    found = _agree(before_exclusion, _gx_checks() + extras)
    assert found["municipality_present"] == 2 * BLANKS  # '' and NULL are both missing
    assert all(found.values()), {c: n for c, n in found.items() if not n}  # all exercised
    by_sql, by_gx, rows = _both(before_exclusion, extras[1:])
    share = extras[1]
    assert by_gx[share.id].success, "the threshold is a share of all rows, not of the values"
    assert by_sql[share.id] / rows["referrals"] <= share.threshold


def test_the_rules_over_the_vaults_numbers_are_the_one_exception(snapshot: Path) -> None:
    """GX runs neither a ``python_rule`` nor a ``vault_rows`` query: both read fødselsnummer
    (``idents.fid``), which GX never sees."""
    only_sql = [c for c in load_catalogue() if c.expectation in NOT_IN_GX]
    assert [(c.id, c.table, c.expectation) for c in only_sql] == [
        ("fodselsnummer_valid", "idents", "python_rule"),
        ("contact_before_birth", "idents", "vault_rows"),
    ]
    assert all("fid" in str(c.kwargs) for c in only_sql)
    with duckdb.connect(str(snapshot), read_only=True) as con:
        columns = con.execute("SELECT column_name FROM duckdb_columns()").fetchall()
    assert ("fid",) not in columns


def test_query_checks_select_record_keys_only(before_exclusion: Path) -> None:
    """GX's unexpected-rows queries return the record keys and nothing else (no values)."""
    queried = 0
    with duckdb.connect(str(before_exclusion), read_only=True) as con:
        for check in _gx_checks():
            expectation = to_expectation(check)
            query = getattr(expectation, "unexpected_rows_query", None)
            if query is None:
                continue
            sql = query.format(batch=check.table)
            columns = [d[0] for d in con.execute(f"{sql} LIMIT 0").description]
            assert columns == record_keys(check), check.id
            queried += 1
    assert queried >= 10
