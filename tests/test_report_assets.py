"""The report types' Dagster consumer: ``reports/message_counts`` materialised for real over
synthetic report files received by ``intake_directory`` (real XML, Delta tables, DuckDB, GX),
with the bundled registry's units of each type; the catalogue's checks are blocking asset
checks that pass on the clean tertial and fail, blocking, on the one whose KPP has a negative
cost."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path

import duckdb
import pandas as pd
import pytest
from dagster import materialize

from assets.reports import message_counts
from assets.resources import HomeResource
from npr_pipeline import reference
from npr_pipeline.home import Home
from npr_pipeline.intake.run import intake_directory
from npr_pipeline.periods import Period
from npr_pipeline.quality.report_checks import report_checks
from npr_pipeline.report_inputs import reports_path
from npr_pipeline.synth import run as synth_run
from npr_pipeline.synth.generate import generate_unit_year
from npr_pipeline.synth.model import UnitInfo, UnitYear
from npr_pipeline.synth.reports import report_types_of, write_reports
from tests.intake_files import fill_inbox, mutate, prepare_test_home

IN_SEPTEMBER = datetime(2026, 9, 3, 9, 0, tzinfo=UTC)


def _units() -> dict[str, pd.Series]:
    """One unit of the bundled registry per sector: somatic (KPP), mental health (KPP, forløp,
    XPR_VTK) and TSB (KPP, forløp, NPR-melding-TSB)."""
    units = reference.units()
    trusts = units[units["unit_type"] == "trust_site"]
    return {s: trusts[trusts["sector"] == s].iloc[0] for s in ("somatic", "mental_health", "tsb")}


def _year(row: pd.Series) -> tuple[UnitYear, tuple[str, ...]]:
    unit = UnitInfo(resh=row["reshID"], orgnr=row["orgnr"], her=row["herID"], name=row["name"],
                    unit_type="trust_site", rhf=row["rhf"], komnr=row["komnr"],
                    sector=row["sector"], fagomrade=row["fagomrade"], size_weight=1.0)  # fmt: skip
    fag = set(reference.code_list("fagomrade"))
    year = generate_unit_year(unit, 2026, 8, 7, 10, synth_run._catchment(), fag)
    return year, report_types_of(row["message_types"])


@pytest.fixture(scope="module")
def report_files(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """Each unit's report files through August, as ``npr synth`` writes them, except that the
    somatic unit's August KPP (year to date, read by T2) has one negative cost."""
    out = tmp_path_factory.mktemp("reports")
    files: list[Path] = []
    for row in _units().values():
        unit_year, codes = _year(row)
        files += write_reports(out, unit_year, codes, 2026, 8, 3)
    somatic = _units()["somatic"]["reshID"]
    august = next(p for p in files if p.name == f"{somatic}_kpp_2026-01-01_2026-08-31.xml")
    august.write_bytes(mutate(august, ('kostnad="', 'kostnad="-')))
    return files


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory, report_files: list[Path]) -> HomeResource:
    """One HOME that received every file."""
    root = tmp_path_factory.mktemp("home")
    home = prepare_test_home(Home(root=root / "home"))
    inbox = fill_inbox(root / "inbox", report_files)
    intake_directory(home, inbox, workers=1, clock=lambda: IN_SEPTEMBER)
    return HomeResource(root=str(home.root))


def test_message_counts_per_unit_and_type_with_passing_checks(
    home: HomeResource, report_files: list[Path]
) -> None:
    kinds = {p.name.split("_")[1] for p in report_files}
    assert kinds == {"kpp", "forlop", "vtk", "tsb"}
    result = materialize([message_counts], resources={"home": home}, partition_key="2026-T1")
    assert result.success
    checks = result.get_asset_check_evaluations()
    assert sorted(c.check_name for c in checks) == sorted(c.id for c in report_checks())
    assert all(c.passed for c in checks), [c.check_name for c in checks if not c.passed]
    units = _units()
    con = duckdb.connect(str(reports_path(Home(root=Path(home.root)), Period.parse("2026-T1"))))
    counts = con.execute(
        "SELECT message_type, unit, period_to, records FROM message_counts ORDER BY ALL"
    ).fetchall()
    kpp_rows = con.execute("SELECT count(*) FROM kpp_patients").fetchone()[0]
    con.close()
    psych, tsb = units["mental_health"]["reshID"], units["tsb"]["reshID"]
    # T1 reads the tertial's reports (to 30 April), not August's year to date
    assert {(t, u, p) for t, u, p, _ in counts} == {
        ("NPR_KPP", u["reshID"], date(2026, 4, 30)) for u in units.values()
    } | {("NPR_FORLOP", psych, date(2026, 4, 30)), ("NPR_FORLOP", tsb, date(2026, 4, 30)),
         ("XPR_VTK", psych, date(2026, 4, 30)), ("NPR_TSB", tsb, date(2026, 4, 30))}  # fmt: skip
    assert sum(n for t, _, _, n in counts if t == "NPR_KPP") == kpp_rows > 0


def test_an_error_finding_fails_its_blocking_check(home: HomeResource) -> None:
    result = materialize(
        [message_counts], resources={"home": home}, partition_key="2026-T2", raise_on_error=False
    )
    failed = {c.check_name for c in result.get_asset_check_evaluations() if not c.passed}
    assert failed == {"kpp_cost_non_negative", "kpp_total_equals_costs"}
    assert not result.success  # blocking: the error finding fails the run
