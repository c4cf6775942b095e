"""The report page's pictures and text, from hand-made documents (no production run).

The page of a real run is checked against its warehouse in test_production_runs.py
(``check_report``); here the cases a small synthetic year does not reach: suppressed and empty
series, monthly deliveries, a delivery without an ownership column, a period with no
deliveries at all.
"""

from __future__ import annotations

import json
import re
from decimal import Decimal

from lxml import html

from npr_pipeline.report import charts
from npr_pipeline.report.page import money, render


def _cell(region: str, measure: str, n: float | None, mean: float | None = None) -> dict:
    suppressed = n is None
    return {
        "group_type": "all" if region == "all" else "rhf",
        "group_value": region,
        "measure": measure,
        "n": n,
        "mean_days": mean,
        "median_days": None if mean is None else mean - 5,
        "fristbrudd_pct": None if suppressed else 2.5,
        "suppressed": suppressed,
        "version": 1,
    }


def _texts(svg: str) -> list[str]:
    return [t.strip() for t in re.findall(r"<text[^>]*>([^<]*)</text>", svg)]


def test_a_suppressed_cell_is_marked_where_its_bar_would_be_and_never_drawn() -> None:
    rows = [
        _cell("HSO", "avviklet", 120.0, 41.0),
        _cell("HN", "avviklet", None),  # suppressed: no values at all
        _cell("HSO", "ventende", 80.0, 30.0),
        _cell("HN", "ventende", 9.0, 77.0),
    ]
    texts = _texts(charts.ventetider_regions(rows))
    assert texts.count("prikket") == 2, "HN avviklet: in the days panel and the fristbrudd panel"
    assert "41" in texts and "36" in texts, "mean and median of HSO beside their bars"
    assert "77" in texts, "HN's waiting cell is not suppressed and is drawn"


def test_the_quality_chart_draws_each_share_against_the_threshold() -> None:
    units = [
        {"unit": "1", "name": "Sykehus A", "rhf": "HV", "share": 0.075},
        {"unit": "2", "name": "Sykehus B", "rhf": "HN", "share": 0.0},
    ]
    texts = _texts(charts.quality({"threshold": 0.05, "units": units}))
    assert "7.5 %" in texts and "0.0 %" in texts
    assert "grense 5 % (threshold)" in texts
    assert "Sykehus A (1)" in texts


def test_no_chart_of_a_suppressed_or_empty_series() -> None:
    suppressed = [_cell("HSO", "avviklet", None), _cell("HV", "ventende", None)]
    assert charts.ventetider_regions(suppressed) is None
    assert charts.ventetider_regions([]) is None
    assert charts.ventetider_months([{"month": "2026-01", "version": None, "rows": []}]) is None
    assert charts.completeness([]) is None
    assert charts.quality({"threshold": 0.05, "units": [{"share": 0.0}]}) is None
    assert charts.isf({"months": [], "split": []}) is None
    assert charts.gjestepasient([]) is None


def test_a_region_has_one_colour_on_every_chart() -> None:
    colour = charts.REGION_COLOURS["HMN"]
    assert len(set(charts.REGION_COLOURS.values())) == len(charts.REGION_COLOURS)
    vt = charts.ventetider_regions([_cell("HMN", "avviklet", 50.0, 20.0)])
    isf = charts.isf(
        {
            "months": [{"rhf": "HMN", "month": "2026-01", "points": 3.5, "refund": "1000.00"}],
            "split": [],
        }
    )
    matrix = [{"home_rhf": "HMN", "treating_rhf": "HV", "cases": 3, "amount": "100.00"}]
    for svg in (vt, isf, charts.gjestepasient(matrix)):
        assert colour.lower() in svg.lower()


def test_monthly_deliveries_draw_the_months_and_leave_suppressed_points_out() -> None:
    months = [
        {"month": "2026-01", "version": 2, "rows": [_cell("HV", "avviklet", 40.0, 33.0),
                                                    _cell("all", "avviklet", 40.0, 33.0)]},
        {"month": "2026-02", "version": 1, "rows": [_cell("HV", "avviklet", None),
                                                    _cell("all", "avviklet", None)]},
        {"month": "2026-03", "version": 1, "rows": [_cell("HV", "avviklet", 41.0, 35.0)]},
        {"month": "2026-04", "version": None, "rows": []},
    ]  # fmt: skip
    svg = charts.ventetider_months(months)
    assert svg is not None and "2026-04" in _texts(svg), "a month without delivery has its tick"
    assert _texts(svg).count("prikket") == 1, "February's point is marked, not drawn"
    page = html.fromstring(render(_document(ventetider_months=months), [], "v0001.html"))
    cells = {tr.get("data-month"): tr.text_content() for tr in page.xpath("//tr[@data-month]")}
    assert "prikket" in cells["2026-02"]
    assert "ingen månedsleveranse" in cells["2026-04"]
    assert "40 / 33" in " ".join(cells["2026-01"].split())


def test_without_an_ownership_column_isf_shows_totals_and_says_so() -> None:
    isf = {
        "version": 1,
        "split_by": None,
        "months": [
            {
                "rhf": "HV",
                "month": "2026-01",
                "stays": 3,
                "contacts": 4,
                "points": 1.5,
                "refund": "1234567.89",
                "rate_assumed": True,
                "left_out_paid_privately": 0,
            },
        ],  # fmt: skip
        "split": [],
        "assumed": {"refund": "1234567.89", "total": "1234567.89", "share": 1.0},
    }
    page = html.fromstring(render(_document(isf=isf), [], "v0001.html"))
    section = " ".join(page.xpath("//section[@id='isf']")[0].text_content().split())
    assert "totals only" in section
    refund = page.xpath("//tr[@data-isf='HV|2026-01']/td")[5].text_content()
    assert refund == "1\u00a0234\u00a0567,89 *", "exact, and marked as on an assumed rate"
    assert not page.xpath("//section[@id='isf']//th[contains(., 'Privat')]")


def test_a_period_without_deliveries_still_has_every_section_and_its_data() -> None:
    text = render(_document(), ["v0001.html"], "v0002.html")
    page = html.fromstring(text)
    ids = [s.get("id") for s in page.xpath("//section")]
    assert ids == ["kompletthet", "kvalitet", "ventetider", "isf", "gjestepasient", "endringer"]
    assert [a.get("href") for a in page.xpath("//section[@id='endringer']//a")] == [
        "v0002.html",
        "v0001.html",
    ]
    (script,) = page.xpath("//script[@id='report-data']")
    assert json.loads(script.text)["period"] == "2026-T1"


def test_embedded_data_cannot_close_its_script_element() -> None:
    document = _document()
    document["run_id"] = "</script><script>alert(1)</script>"
    text = render(document, [], "v0001.html")
    assert text.count("</script>") == 1
    (script,) = html.fromstring(text).xpath("//script[@id='report-data']")
    assert json.loads(script.text)["run_id"] == document["run_id"]


def test_money_is_exact_and_norwegian() -> None:
    assert money("44622849.67") == "44\u00a0622\u00a0849,67"
    assert money(Decimal("0.10")) == "0,10"
    assert money(None) == "–"


def _document(**parts: object) -> dict:
    """A ``data.collect`` document of a period with nothing delivered, plus ``parts``."""
    document = {
        "period": "2026-T1",
        "run_id": "run-1",
        "generated_at": "2026-05-05T07:00:00+00:00",
        "versions": {},
        "completeness": [],
        "quality": {"threshold": 0.05, "step": None, "units": [], "rules": []},
        "ventetider": {"version": None, "regions": [], "months": []},
        "isf": {"version": None, "split_by": None, "months": [], "split": [], "assumed": {}},
        "gjestepasient": {"version": None, "matrix": [], "apart": []},
        "changes": [],
    }
    if "ventetider_months" in parts:
        document["ventetider"] = {"version": 1, "regions": [], "months": parts["ventetider_months"]}
    if "isf" in parts:
        document["isf"] = parts["isf"]
    return document
