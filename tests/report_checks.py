"""Checks of a report page against the warehouse it was written from (tests and ``make e2e``).

Each figure the page embeds (``report-data``) is compared with the delivery tables of the same
version, read here with queries of their own (not the page's), and cross-checked against other
rows of the same tables (the regions' months add up to the period's total), so a page that
drops, doubles or recomputes a figure fails.
"""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

import duckdb
from lxml import html

from npr_pipeline.periods import Period
from npr_pipeline.report.page import money


def embedded_report(page: Path) -> dict:
    """The figures a report page embeds (its ``report-data`` JSON)."""
    doc = html.parse(str(page)).getroot()
    (script,) = doc.xpath("//script[@id='report-data']")
    return json.loads(script.text)


def check_report(home: Path, page: Path) -> dict:
    """Assert the page's figures are those of the warehouse; return the embedded document."""
    data = embedded_report(page)
    doc = html.parse(str(page)).getroot()
    con = duckdb.connect(str(home / "warehouse.duckdb"), read_only=True)
    try:
        period = data["period"]
        current = dict(
            con.execute(
                "SELECT step, max(version) FROM delivery_versions WHERE period = ? GROUP BY step",
                [period],
            ).fetchall()
        )
        assert {s: v["version"] for s, v in data["versions"].items()} == current
        _check_completeness(con, data, period)
        if "ventetider" in current:
            _check_ventetider(con, data, doc, period, current["ventetider"])
        if "isf" in current:
            _check_isf(con, data, doc, period, current["isf"])
        if "gjestepasient" in current:
            _check_gjestepasient(con, data, period, current["gjestepasient"])
    finally:
        con.close()
    return data


def _check_completeness(con: duckdb.DuckDBPyConnection, data: dict, period: str) -> None:
    for step in data["completeness"]:
        (gate,) = con.execute(
            "SELECT gate FROM delivery_versions WHERE step = ? AND period = ? AND version = ?",
            [step["step"], period, step["version"]],
        ).fetchone()
        gate = json.loads(gate)
        units = step["units"]
        assert len(units) == gate["expected"], step["step"]
        shown = {u["reshID"] for u in units if u["status"] != "delivered"}
        assert shown == {m["reshID"] for m in gate["missing"]}, step["step"]
        excused = {u["reshID"] for u in units if u["status"] == "excused"}
        assert excused == set(gate["excused"]), step["step"]


def _check_ventetider(
    con: duckdb.DuckDBPyConnection, data: dict, doc: html.HtmlElement, period: str, version: int
) -> None:
    table = {
        (r[0], r[1], r[2]): r[3:]
        for r in con.execute(
            """SELECT group_type, group_value, measure, n, mean_days, median_days,
                      fristbrudd_pct, suppressed
               FROM ventetider WHERE period = ? AND version = ?
                 AND group_type IN ('all', 'rhf')""",
            [period, version],
        ).fetchall()
    }
    shown = {
        (r["group_type"], r["group_value"], r["measure"]): (
            r["n"], r["mean_days"], r["median_days"], r["fristbrudd_pct"], r["suppressed"],
        )
        for r in data["ventetider"]["regions"]
    }  # fmt: skip
    assert shown == table
    for (_, region, measure), values in table.items():
        row = doc.xpath(f"//tr[@data-cell='{region}|{measure}']")
        assert row, (region, measure)
        text = row[0].text_content()
        if values[-1]:  # suppressed: said so, no number
            assert "prikket" in text and values[0] is None
    hidden = [k for k, v in table.items() if v[-1] and k[0] == "rhf"]
    chart = doc.xpath("//section[@id='ventetider']//svg")
    if hidden and chart:
        assert "prikket" in html.tostring(chart[0], encoding="unicode"), "suppressed not marked"


def _check_isf(
    con: duckdb.DuckDBPyConnection, data: dict, doc: html.HtmlElement, period: str, version: int
) -> None:
    table = {
        (r[0], r[1]): r[2:]
        for r in con.execute(
            """SELECT key, month, stays, contacts, points, refund, rate_assumed
               FROM isf_summary WHERE period = ? AND version = ? AND level = 'rhf'
                 AND list_contains(?, month)""",
            [period, version, Period.parse(period).months],
        ).fetchall()
    }
    shown = {
        (r["rhf"], r["month"]): (
            r["stays"], r["contacts"], r["points"], Decimal(r["refund"]), r["rate_assumed"],
        )
        for r in data["isf"]["months"]
    }  # fmt: skip
    assert shown == table
    (total,) = con.execute(
        """SELECT refund FROM isf_summary WHERE period = ? AND version = ? AND level = 'all'
             AND month = 'period'""",
        [period, version],
    ).fetchone()
    assert sum(v[3] for v in shown.values()) == total, "the regions' months add up to the total"
    for (region, month), values in table.items():
        row = doc.xpath(f"//tr[@data-isf='{region}|{month}']")
        assert row and money(values[3]) in row[0].text_content(), (region, month)
    private = {
        (r[0], r[1]): r[2]
        for r in con.execute(
            """SELECT key, month, refund_private FROM isf_summary
               WHERE period = ? AND version = ? AND level = 'rhf' AND refund_private IS NOT NULL
                 AND list_contains(?, month)""",
            [period, version, Period.parse(period).months],
        ).fetchall()
    }
    split = {}
    for part in data["isf"]["split"]:
        if part["part"] == "private":
            key = (part["rhf"], part["month"])
            split[key] = split.get(key, Decimal(0)) + Decimal(part["refund"])
    assert split == private, "the private part is the summary's refund_private"
    for (region, month), refund in private.items():
        cells = doc.xpath(f"//tr[@data-isf='{region}|{month}']/td")
        assert cells[-1].text_content() == money(refund), ("private", region, month)


def _check_gjestepasient(
    con: duckdb.DuckDBPyConnection, data: dict, period: str, version: int
) -> None:
    matrix = con.execute(
        """SELECT month, home_rhf, treating_rhf, cases, amount FROM gjestepasient_matrix
           WHERE period = ? AND version = ?""",
        [period, version],
    ).fetchall()
    shown = [
        (r["month"], r["home_rhf"], r["treating_rhf"], r["cases"], Decimal(r["amount"]))
        for r in data["gjestepasient"]["matrix"]
    ]
    assert sorted(shown) == sorted(matrix)
    apart = con.execute(
        """SELECT month, treating_rhf, category, cases FROM gjestepasient_apart
           WHERE period = ? AND version = ?""",
        [period, version],
    ).fetchall()
    shown_apart = [
        (r["month"], r["treating_rhf"], r["category"], r["cases"])
        for r in data["gjestepasient"]["apart"]
    ]
    assert sorted(shown_apart, key=str) == sorted(apart, key=str)
