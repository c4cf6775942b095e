"""``make e2e``: the period's report page (``HOME/reports/<period>/index.html``) in Chromium.

A clean small year (the faulty one of the feedback pages would not pass the gate) goes through
the operator's commands: ``npr synth``, ``npr registry import``, ``npr intake`` and
``npr run --period 2026-T1 --json``, whose ``report`` key names the page. The rendered DOM must
have the h1 and the six sections, each with its heading and content (a chart or a table), and
the page's embedded figures must equal the delivery tables of the same versions
(``tests/report_checks.check_report``, the test ``make test`` runs on its own run).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from lxml import html

from e2e.check_reports import Page, _run, _text
from tests.report_checks import check_report

PERIOD = "2026-T1"
SYNTH = ("--units", "8", "--through", "2026-04", "--episodes-per-unit-month", "15", "--seed", "5")
SECTIONS = {
    "kompletthet": "Kompletthet (completeness)",
    "kvalitet": "Kvalitet (quality)",
    "ventetider": "Ventetider (waiting times)",
    "isf": "ISF (activity-based financing)",
    "gjestepasient": "Gjestepasient (guest-patient settlement)",
    "endringer": "Endringer (changes)",
}
CHARTS = ("kompletthet", "ventetider", "isf", "gjestepasient")
"""The sections that must show a chart for a clean year (quality draws none when nothing was
excluded; changes are tables)."""


def report_page(tmp: Path) -> Page:
    """Generate and run a clean year into ``tmp/report-home``; the report page to open."""
    npr = Path(sys.executable).with_name("npr")
    synth, home = tmp / "report-synth", tmp / "report-home"
    _run([npr, "synth", "--out", synth, *SYNTH])
    _run([npr, "--home", home, "registry", "import", synth / "registry.csv"])
    _run([npr, "--home", home, "intake", synth / "inbox"])
    run = json.loads(_run([npr, "--home", home, "run", "--period", PERIOD, "--json"]))
    if not run.get("report"):
        sys.exit(f"e2e: npr run --json names no report page: {sorted(run)}")
    page = Path(run["report"])
    return Page("report", page, lambda doc: _expect_report_page(doc, home, page))


def _expect_report_page(doc: html.HtmlElement, home: Path, page: Path) -> list[str]:
    """The h1, every section with its heading and content, and the figures of the tables."""
    problems = []
    h1 = doc.find(".//h1")
    if h1 is None or f"Rapport {PERIOD}" not in _text(h1):
        problems.append(f"the h1 does not name the report of {PERIOD}")
    for section_id, heading in SECTIONS.items():
        found = doc.xpath(f"//section[@id='{section_id}']")
        if not found:
            problems.append(f"no section {section_id!r}")
            continue
        h2 = found[0].find("h2")
        if h2 is None or _text(h2) != heading:
            problems.append(f"section {section_id!r} is not headed {heading!r}")
        content = ".//h3" if section_id == "endringer" else ".//table | .//svg"
        if not found[0].xpath(content):  # changes: a heading per delivery, tables from v2
            problems.append(f"section {section_id!r} shows nothing under its heading")
        if section_id in CHARTS and not found[0].xpath(".//svg//*[local-name()='path']"):
            problems.append(f"section {section_id!r} draws no chart")
    try:  # the file as written: the browser's DOM may reorder what the parser keeps
        check_report(home, page)
    except AssertionError as exc:
        problems.append(f"the page's figures differ from the delivery tables: {exc}")
    return problems
