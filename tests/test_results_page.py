"""The per-period quality results page: written from a real GX run of a small period, one row
per catalogue check, nothing that needs the internet, and a failing check's coordinator text.

The real run is one synthetic month of two units through intake, ``build_snapshot`` and
``run_suites``, as ``core/production_input`` does it; one catalogue check is tightened so that it
fails on real rows (the catalogue passes on clean synthetic data).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path

import pytest
from lxml import html

from npr_pipeline.home import Home
from npr_pipeline.intake.run import intake_directory
from npr_pipeline.periods import Period
from npr_pipeline.production.snapshot import build_snapshot, snapshot_path
from npr_pipeline.quality.catalogue import Check, load_catalogue
from npr_pipeline.quality.gx_suite import NOT_IN_GX, CheckResult, run_suites
from npr_pipeline.quality.results_page import GX_DOCS, write_results_page
from npr_pipeline.synth.run import SynthOptions, run_synth
from tests.intake_files import prepare_test_home

PERIOD = "2026-01"
RUN_AT = datetime(2026, 2, 20, 6, 30, tzinfo=UTC)
TIGHTENED = "sex_in_code_list"  # only men allowed: fails on every woman in the month
EXTERNAL = re.compile(r"https?:|//cdn|//[a-z0-9.-]+\.[a-z]{2,}/", re.IGNORECASE)


def _text(element: html.HtmlElement) -> str:
    return " ".join(element.text_content().split())


def _tightened_catalogue() -> list[Check]:
    """The catalogue in its order, with one check narrowed so a real month fails it."""
    return [
        c.model_copy(update={"kwargs": {"column": "kjonn", "value_set": ["1"]}})
        if c.id == TIGHTENED
        else c
        for c in load_catalogue()
    ]


@pytest.fixture(scope="module")
def period_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[CheckResult]]:
    """One month of two units through intake and the GX suites; the page and the results."""
    root = tmp_path_factory.mktemp("results-page")
    run_synth(
        SynthOptions(
            out=root / "synth", year=2026, through=1, units=2, seed=5, episodes_per_unit_month=15
        )
    )
    home = prepare_test_home(Home(root=root / "home"), root / "synth" / "registry.csv")
    intake_directory(home, root / "synth" / "inbox", workers=1)
    checks = _tightened_catalogue()
    tables = list(dict.fromkeys(c.table for c in checks))
    build_snapshot(home, Period.parse(PERIOD))
    results = run_suites(snapshot_path(home, Period.parse(PERIOD)), checks, tables)
    page = write_results_page(home.root / "data_docs" / PERIOD, PERIOD, checks, results, RUN_AT)
    return page, results


@pytest.fixture(scope="module")
def doc(period_run: tuple[Path, list[CheckResult]]) -> html.HtmlElement:
    return html.document_fromstring(period_run[0].read_text(encoding="utf-8"))


def test_page_is_written_where_the_period_lives(period_run: tuple[Path, list]) -> None:
    page, results = period_run
    assert page.parts[-3:] == ("data_docs", PERIOD, "index.html")
    assert len(results) == sum(c.expectation not in NOT_IN_GX for c in load_catalogue())


def test_one_row_per_catalogue_check_with_its_counts(
    doc: html.HtmlElement, period_run: tuple[Path, list[CheckResult]]
) -> None:
    rows = doc.xpath("//tr[@data-check]")
    assert [tr.get("data-check") for tr in rows] == [c.id for c in load_catalogue()]
    by_id = {r.check_id: r for r in period_run[1]}
    for tr in rows:
        cells = [_text(td) for td in tr.findall("td")]
        result = by_id.get(tr.get("data-check"))
        if result is None:  # a python_rule check: listed, marked as not run by GX
            assert cells[-1].endswith("(not run by GX)")
        else:
            assert re.sub(r"\D", "", cells[5]) == str(result.unexpected_count)
            assert re.sub(r"\D", "", cells[6]) == str(result.element_count)
            assert result.element_count > 0, f"{result.check_id}: the month's table is empty"


def test_summary_counts(doc: html.HtmlElement, period_run: tuple[Path, list]) -> None:
    summary = {
        _text(tr.find("th")): _text(tr.find("td")) for tr in doc.xpath("//table[1]//tr[th][td]")
    }
    results = period_run[1]
    assert summary["Periode (period)"] == PERIOD
    assert summary["Kjørt (run at)"] == "2026-02-20 06:30:00+00:00"
    assert summary["Kontroller i katalogen (catalogue checks)"] == str(len(load_catalogue()))
    assert summary["Kjørt (checks run)"] == str(len(results))
    assert summary["Bestått (passed)"] == str(sum(r.success for r in results))
    assert summary["Feilet, feil (failed, error)"] == "1"  # the tightened check, nothing else
    assert summary["Feilet, advarsel (failed, warning)"] == "0"


def test_failing_check_shows_its_message(
    doc: html.HtmlElement, period_run: tuple[Path, list[CheckResult]]
) -> None:
    (result,) = [r for r in period_run[1] if r.check_id == TIGHTENED]
    assert not result.success and result.error is None and result.unexpected_count > 0
    (row,) = doc.xpath(f"//tr[@data-check='{TIGHTENED}']")
    assert _text(row.findall("td")[-1]) == "feilet (failed)"
    (detail,) = doc.xpath(f"//tr[@data-detail='{TIGHTENED}']")
    check = next(c for c in load_catalogue() if c.id == TIGHTENED)
    assert check.message in _text(detail) and check.fix in _text(detail)
    assert doc.xpath(f"//a[@href='#check-{TIGHTENED}']"), "the summary links the failed check"
    assert "produksjonen for perioden blokkeres" in _text(doc.body)
    assert len(doc.xpath("//tr[@data-detail]")) == 1, "only failures carry the coordinator text"


def test_nothing_on_the_page_needs_the_internet(period_run: tuple[Path, list]) -> None:
    source = period_run[0].read_text(encoding="utf-8")
    assert not EXTERNAL.search(source), EXTERNAL.search(source)
    doc = html.document_fromstring(source)
    assert not doc.xpath("//script | //link | //img | //iframe | //@src")
    assert not doc.xpath("//a[@href][not(starts-with(@href, '#'))]"), "no GX docs were built"


def test_gx_error_and_the_raw_data_docs_link(tmp_path: Path) -> None:
    """Rendering only: an expectation GX could not evaluate fails visibly, and GX's own Data
    Docs are linked exactly when their index exists (so the page never has a broken link)."""
    checks = [c for c in load_catalogue() if c.table == "patients"][:2]
    outcomes = ((checks[0], False, "IndexError: <list> index"), (checks[1], True, None))
    broken, clean = (
        CheckResult(c.id, c.table, c.category, c.severity, ok, 10, 0, 0.0, None, error)
        for c, ok, error in outcomes
    )
    page = write_results_page(tmp_path, PERIOD, checks, [broken, clean], RUN_AT)
    doc = html.document_fromstring(page.read_text(encoding="utf-8"))
    cells = [_text(td) for td in doc.xpath(f"//tr[@data-check='{checks[0].id}']/td")]
    assert cells[5:8] == ["–"] * 3 and cells[-1].endswith("(GX error)")
    detail = _text(doc.xpath(f"//tr[@data-detail='{checks[0].id}']")[0])
    assert "GX: IndexError: <list> index" in detail and checks[0].message in detail
    assert not doc.xpath("//a[@href='gx/index.html']")

    (tmp_path / GX_DOCS).mkdir()
    (tmp_path / GX_DOCS / "index.html").write_text("<html></html>", encoding="utf-8")
    page = write_results_page(tmp_path, PERIOD, checks, [broken, clean], RUN_AT)
    (link,) = html.document_fromstring(page.read_text(encoding="utf-8")).xpath("//a[@href]")[-1:]
    assert link.get("href") == "gx/index.html" and "needs internet" in _text(link)
