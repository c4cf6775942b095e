"""``make e2e``: the pages a coordinator opens, opened in headless Chromium and checked.

The unit tests read the report HTML as text; only a browser shows whether the page renders,
whether what it shows agrees with the XML report of the same submission, and whether it needs
anything it cannot have. The register's network has no internet, so every page is rendered
with name resolution switched off: what this sees is what a coordinator there sees.

    python -m e2e.check_reports

Generates a small faulty year into a temporary HOME (``npr synth --units 8 --through 2026-03
--defects 0.3 --episodes-per-unit-month 20``, one January file made schema-invalid, intake with
``allow_synthetic_fnr``), runs the GX suites of the last month as ``core/production_input``
does (quality results page plus GX's raw Data Docs in ``gx/``), then checks five pages: an
accepted XPR_VAL, a rejected XPR_VAL, an XPR_VAL with schema errors, an XPR_ERR with findings
and the quality results page. The report pages must read for a reporting officer: each schema
error libxml2 reported in a Norwegian sentence with the original below, elements named by
their record, the value at fault in XPR_ERR, the time of receipt in Oslo time, no
fødselsnummer. Per page: the rendered DOM (``--dump-dom``)
has the expected headings and the counts the XML report (or the GX run) states; every reference
(``a``/``link``/``img``/``script``/frames/objects/forms, CSS ``url()`` and ``@import``)
resolves to an existing local file (or an anchor of the page) and none leaves the machine; the
screenshot (``.e2e/<page>.png``, 1280x2000) is a real PNG with drawn content. Exits 1 listing
every problem, 0 when all pages pass.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import zlib
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import unquote, urlsplit

from lxml import html

from npr_pipeline.feedback.reports import (
    EXAMPLES_PER_RULE,
    XPR_ERR,
    XPR_VAL,
    display_files,
    local_time,
    read_report_findings,
    read_report_summary,
)
from npr_pipeline.feedback.schema_messages import explain

REPO = Path(__file__).resolve().parent.parent
OUT = REPO / ".e2e"
PERIOD = "2026-03"  # the last month of the generated year: the tertial is not yet covered
SYNTH = (
    "--units", "8", "--through", PERIOD, "--defects", "0.3", "--episodes-per-unit-month", "20",
)  # fmt: skip
WINDOW = (1280, 2000)
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",  # we run as root in a container
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--host-resolver-rules=MAP * ~NOTFOUND",  # no internet, as on the register's network
    "--virtual-time-budget=5000",  # let a page's scripts finish before the DOM is taken
)
CHROMIUM_SECONDS = 120
MIN_PNG_BYTES = 20_000  # a blank 1280x2000 page is ~12 kB
MIN_DISTINCT_ROWS = 50  # a single-colour page has 2; a rendered report several hundred
PNG_CHANNELS = {0: 1, 2: 3, 4: 2, 6: 4}  # PNG colour type -> samples per pixel
REFERENCES = (
    ("a", "href"),
    ("link", "href"),
    ("img", "src"),
    ("script", "src"),
    ("iframe", "src"),
    ("embed", "src"),
    ("source", "src"),
    ("object", "data"),
    ("form", "action"),
    ("base", "href"),
)
CSS_REFERENCE = re.compile(r"""url\(\s*['"]?([^'")\s]+)|@import\s+['"]([^'"]+)""")
LOCAL_SCHEMES = ("", "file")
IGNORED_SCHEMES = ("data", "javascript", "mailto")


@dataclass
class Page:
    """One page to open, and what its rendered DOM must show."""

    name: str
    path: Path
    expect: Callable[[html.HtmlElement], list[str]]
    problems: list[str] = field(default_factory=list)


def main() -> None:
    """Generate, render, check; print a summary and exit non-zero on any problem."""
    chromium = shutil.which("chromium")
    if chromium is None:
        sys.exit("e2e: chromium not found (Debian: apt-get install chromium)")
    OUT.mkdir(exist_ok=True)
    from e2e.report_page import report_page  # it builds on this module's helpers

    with tempfile.TemporaryDirectory(prefix="npr-e2e-") as tmp:
        home = Path(tmp) / "home"
        print(f"e2e: generating a faulty year and running intake into {home} ...")
        _generate(Path(tmp), home)
        print(f"e2e: running the GX suites of {PERIOD} (quality results page) ...")
        pages = _pick_reports(home) + [_results_page(home)]
        print("e2e: a clean year through npr run 2026-T1 (the report page) ...")
        pages.append(report_page(Path(tmp)))
        for page in pages:
            print(f"e2e: opening {page.name} ({page.path.relative_to(tmp)}) ...")
            page.problems = _check_page(chromium, page)
    _print_summary(pages)
    if any(page.problems for page in pages):
        sys.exit(1)


# -- the data ---------------------------------------------------------------------------------


def _generate(tmp: Path, home: Path) -> None:
    """The operator's commands, as documented: synth, registry import, intake."""
    npr = Path(sys.executable).with_name("npr")
    synth = tmp / "synth"
    _run([npr, "synth", "--out", synth, *SYNTH])
    _break_schema(synth / "inbox")
    home.mkdir()
    (home / "settings.json").write_text(json.dumps({"allow_synthetic_fnr": True}) + "\n")
    # a synthetic registry as the first import makes a test HOME (synthetic numbers accepted)
    _run([npr, "--home", home, "registry", "import", synth / "registry.csv"])
    _run([npr, "--home", home, "intake", synth / "inbox"])


SCHEMA_BREAKS = (  # (old, new) bytes: an enumeration and a pattern facet libxml2 reports
    (b' omsorgsniva="1"', b' omsorgsniva="7"'),
    (b' fodselsar="19', b' fodselsar="x9'),
)


def _break_schema(inbox: Path) -> None:
    """Make the first January ord file invalid against its schema, as a unit's system might
    (the faulty year's defects are content and header faults), so a page shows schema errors."""
    path = sorted(inbox.glob("*_2026-01_ord.xml"))[0]
    data = path.read_bytes()
    for old, new in SCHEMA_BREAKS:
        data = data.replace(old, new, 1)
    path.write_bytes(data)


def _run(argv: list[str | Path]) -> str:
    """A child that must succeed; its output is shown only when it does not."""
    proc = subprocess.run([str(a) for a in argv], capture_output=True, text=True)
    if proc.returncode != 0:
        sys.exit(f"e2e: {' '.join(map(str, argv))} failed ({proc.returncode}):\n{proc.stderr}")
    return proc.stdout


def _pick_reports(home: Path) -> list[Page]:
    """An accepted XPR_VAL, a rejected XPR_VAL and an XPR_ERR with findings.

    Each the one with the most findings (then by file name), so the pages show tables rather
    than "no findings" wherever the year has something to show.
    """
    reports = [
        (folder, kind, summary)
        for folder in sorted(home.joinpath("feedback").iterdir())
        for kind, summary in read_report_summary(folder).items()
    ]

    def pick(name: str, kind: str, wanted: Callable[[dict], bool]) -> Page:
        found = [(f, s) for f, k, s in reports if k == kind and wanted(s)]
        if not found:
            sys.exit(f"e2e: the generated year has no {name.replace('_', ' ')} report")
        folder, summary = min(found, key=lambda fs: (-fs[1]["findings"], fs[1]["file"]))
        findings = [f for f in read_report_findings(folder) if f["report"] == kind]
        display_files(folder)  # intake writes the XML answers; the pages are rendered on request
        return Page(
            name,
            folder / f"{kind}.html",
            lambda doc: _expect_report(doc, kind, summary, findings),
        )

    return [
        pick("xpr_val_accepted", XPR_VAL, lambda s: s["status"] == "accepted"),
        pick("xpr_val_rejected", XPR_VAL, lambda s: s["status"] == "rejected"),
        pick("xpr_val_schema", XPR_VAL, lambda s: "schema_error" in s["codes"]),
        pick("xpr_err", XPR_ERR, lambda s: s["findings"] > 0),
    ]


def _results_page(home: Path) -> Page:
    """The quality results page of ``PERIOD``, written as ``core/production_input`` writes it.

    Built in a child process: GX and duckdb-engine stay out of this one (and so does the
    nanobind leak report GX's cached connections print at interpreter exit).
    """
    code = "import sys; from e2e.check_reports import build_results_page as b; b(sys.argv[1])"
    run = json.loads(_run([sys.executable, "-c", code, home]).splitlines()[-1])
    page = home / "data_docs" / PERIOD / "index.html"
    return Page("quality_results", page, lambda doc: _expect_results_page(doc, run))


def build_results_page(home: str) -> None:
    """Run the GX suites over ``PERIOD`` and write its page; print what the page must show.

    The same call as ``core/production_input`` (``check_period``): the page in
    ``HOME/data_docs/<period>/``, GX's own Data Docs in its ``gx/`` folder. Printed as one JSON
    line: the GX version and, per catalogue check in order, its id, severity, message and result
    (null if GX did not run it).
    """
    from importlib.metadata import version

    from npr_pipeline.home import Home
    from npr_pipeline.periods import Period
    from npr_pipeline.production.input_checks import check_period
    from npr_pipeline.quality.catalogue import load_catalogue

    npr_home = Home.resolve(home)
    outcome = check_period(npr_home, Period.parse(PERIOD), "e2e", max_share=1.0)
    checks, results = list(load_catalogue()), outcome.results
    by_id = {r.check_id: r for r in results}
    rows = [
        {
            "id": c.id,
            "severity": c.severity,
            "message": c.message,
            "result": vars(by_id[c.id]) if c.id in by_id else None,
        }
        for c in checks
    ]
    print(json.dumps({"gx_version": version("great_expectations"), "checks": rows}))


# -- the browser ------------------------------------------------------------------------------


def _chromium(chromium: str, *args: str) -> str:
    """One headless Chromium run with a fresh profile; its stdout.

    Started in its own session so a hung browser and its helper processes can be ended
    together, by that session's process group, when the time is up.
    """
    with tempfile.TemporaryDirectory(prefix="npr-e2e-profile-") as profile:
        argv = [chromium, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", *args]
        proc = subprocess.Popen(
            argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True
        )
        try:
            out, err = proc.communicate(timeout=CHROMIUM_SECONDS)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate()
            raise RuntimeError(f"chromium did not finish within {CHROMIUM_SECONDS} s") from None
    if proc.returncode != 0:
        tail = err.decode(errors="replace").strip().splitlines()[-5:]
        raise RuntimeError(f"chromium exited {proc.returncode}: " + " | ".join(tail))
    return out.decode("utf-8", errors="replace")


def _check_page(chromium: str, page: Page) -> list[str]:
    """Render the page twice (DOM, screenshot) and collect every problem found."""
    url = page.path.as_uri()
    shot = OUT / f"{page.name}.png"
    shot.unlink(missing_ok=True)
    netlog = OUT / f"{page.name}.netlog.json"
    netlog.unlink(missing_ok=True)
    try:
        dom = _chromium(chromium, f"--log-net-log={netlog}", "--dump-dom", url)
        width, height = WINDOW
        _chromium(chromium, f"--screenshot={shot}", f"--window-size={width},{height}", url)
    except RuntimeError as exc:
        return [str(exc)]
    (OUT / f"{page.name}.dom.html").write_text(dom, encoding="utf-8")
    if not dom.strip():
        return ["chromium returned an empty DOM"]
    doc = html.document_fromstring(dom)
    checks = _check_references(doc, page.path) + _check_requests(netlog) + _check_png(shot)
    return page.expect(doc) + checks


# -- what a page must show --------------------------------------------------------------------


def _text(element: html.HtmlElement) -> str:
    """The rendered text of an element, whitespace collapsed."""
    return " ".join(element.text_content().split())


def _section_start(doc: html.HtmlElement, heading: str) -> html.HtmlElement | None:
    """The first element after the ``h2`` titled ``heading``."""
    found = doc.xpath(f"//h2[normalize-space()='{heading}']/following-sibling::*[1]")
    return found[0] if found else None


def _rows(table: html.HtmlElement) -> list[list[str]]:
    """The data rows of a table, as the text of their ``td`` cells."""
    return [[_text(td) for td in tr.findall("td")] for tr in table.xpath(".//tr[td]")]


def _expect_report(doc: html.HtmlElement, kind: str, xml: dict, findings: list[dict]) -> list[str]:
    """Headings, and every count of the report's XML (``read_report_summary``) on the page;
    what a reporting officer needs of each finding (``_expect_readable``)."""
    problems = _expect_readable(doc, kind, findings)
    h1 = doc.find(".//h1")
    if h1 is None or f"({kind})" not in _text(h1):
        problems.append(f"the h1 does not name {kind}")
    summary, findings = _section_start(doc, "Sammendrag"), _section_start(doc, "Funn")
    if summary is None:
        problems.append("no heading 'Sammendrag'")
    else:
        problems += _expect_summary(summary, xml)
    if findings is None:
        problems.append("no heading 'Funn'")
    elif kind == XPR_VAL:
        problems += _expect_val_findings(findings, xml)
    else:
        problems += _expect_err_rules(doc, findings, xml)
    if xml["omitted"] and f"{xml['omitted']} more findings" not in _text(doc.body):
        problems.append(f"the page does not say that {xml['omitted']} findings were left out")
    return problems


ELEVEN_DIGITS = re.compile(r"\b\d{11}\b")  # a fødselsnummer (not inside a checksum)


def _expect_readable(doc: html.HtmlElement, kind: str, findings: list[dict]) -> list[str]:
    """No fødselsnummer anywhere; XPR_VAL: every schema error libxml2 reported that
    ``explain`` knows is shown as its Norwegian sentence with the original below it, and no
    element is named by libxml2's ``*[n]``; XPR_ERR: every value at fault in the XML is shown."""
    body = _text(doc.body)
    problems = [f"the page shows an 11-digit number {m}" for m in ELEVEN_DIGITS.findall(body)]
    if kind == XPR_VAL:
        cells = {
            (_text(row[0]) if len(row) else "", _text(row[-1]))
            for row in (tr.findall("td") for tr in doc.xpath("//tr[td]"))
            if len(row) >= 5
        }
        sentences = {_text(p) for p in doc.xpath("//p[@class='forklaring']")}
        originals = {_text(p) for p in doc.xpath("//p[@class='original']")}
        for finding in findings:
            element = finding["record"].get("element") or ""
            if element.startswith("*"):
                problems.append(f"Funn: element {element!r} is libxml2's path, not a record")
            sentence = explain(finding["message"]) if finding["rule"] == "schema_error" else None
            if sentence is None:
                continue
            if " ".join(sentence.split()) not in sentences:
                problems.append(f"Funn: no Norwegian sentence {sentence!r}")
            if " ".join(finding["message"].split()) not in originals:
                problems.append(f"Funn: the original {finding['message'][:60]!r}… is not shown")
        if findings and not cells:
            problems.append("Funn: no finding rows")
    else:
        listed: Counter[str] = Counter()  # the page lists the first examples of each rule
        values = []
        for finding in findings:
            listed[finding["rule"]] += 1
            if listed[finding["rule"]] <= EXAMPLES_PER_RULE and finding["record"].get("value"):
                values.append(finding["record"]["value"])
        shown = {_text(td) for td in doc.xpath("//td[@class='verdi']")}
        if not values:
            problems.append("XPR_ERR: no finding in the XML carries the value at fault")
        problems += [f"XPR_ERR: the value {v!r} is not shown" for v in values if v not in shown]
    return problems


def _labelled(table: html.HtmlElement) -> dict[str, str]:
    """A two-column table's rows as label (``th``) -> value (``td``)."""
    return {_text(tr.find("th")): _text(tr.find("td")) for tr in table.xpath(".//tr[th][td]")}


def _expect_summary(table: html.HtmlElement, xml: dict) -> list[str]:
    """The Sammendrag table: identity, status and counts as the XML states them."""
    cells = _labelled(table)
    expected = {
        "Fil (file)": xml["file"],
        "Innsending (submission)": xml["submission_id"],
        "Episoder / pasienter (episodes / patients)": f"{xml['episodes']} / {xml['patients']}",
        "Feil (errors)": str(xml["errors"]),
        "Advarsler (warnings)": str(xml["warnings"]),
        "Merknader (notes)": str(xml["infos"]),
    }
    expected["Mottatt (received)"] = f"{local_time(xml['received'])} (norsk tid)"  # Oslo time
    problems = [
        f"Sammendrag shows {label} = {cells.get(label)!r}, the XML {value!r}"
        for label, value in expected.items()
        if cells.get(label) != value
    ]
    if not cells.get("Status", "").endswith(f"({xml['status']})"):
        problems.append(f"Sammendrag shows Status = {cells.get('Status')!r}, not {xml['status']}")
    return problems


def _expect_val_findings(start: html.HtmlElement, xml: dict) -> list[str]:
    """The Funn table lists exactly the XML's findings, code by code."""
    if xml["written"] == 0:
        if start.tag == "table" or not _text(start).startswith("Ingen funn"):
            return ["Funn: the XML has no findings but the page does not say 'Ingen funn'"]
        return []
    shown = Counter(row[0] for row in _rows(start)) if start.tag == "table" else Counter()
    if shown != Counter(xml["codes"]):
        return [f"Funn: the page lists {dict(shown)}, the XML {xml['codes']}"]
    return []


def _expect_err_rules(doc: html.HtmlElement, start: html.HtmlElement, xml: dict) -> list[str]:
    """The rule table and one ``h3`` per rule carry the XML's count of each rule."""
    if start.tag != "table":
        return ["Funn: the XML has rules but the page shows no rule table"]
    shown = {row[0]: row[3] for row in _rows(start) if len(row) >= 4}
    wanted = {rule["rule"]: str(rule["count"]) for rule in xml["rules"]}
    problems = []
    if shown != wanted:
        problems.append(f"Funn: the rule table shows {shown}, the XML {wanted}")
    headings = {_text(h3) for h3 in doc.iter("h3")}
    for rule, count in wanted.items():
        if not any(h.startswith(f"{rule}: {count} ") for h in headings):
            problems.append(f"Funn: no heading '{rule}: {count} …' for the rule's findings")
    return problems


STATUS_TEXT = {
    "passed": "(passed)",
    "failed": "(failed)",
    "gx_error": "(GX error)",
    "not_run": "(not run by GX)",
}


def _status(result: dict | None) -> str:
    """A check's status from its GX result, as the page must state it."""
    if result is None:
        return "not_run"
    if result["error"] is not None:
        return "gx_error"
    return "passed" if result["success"] else "failed"


def _expect_results_page(doc: html.HtmlElement, run: dict) -> list[str]:
    """Headings, the summary's counts, and one row per catalogue check with its GX counts."""
    problems = []
    h1 = doc.find(".//h1")
    if h1 is None or "Kvalitetskontroll" not in _text(h1) or PERIOD not in _text(h1):
        problems.append(f"the h1 does not name the quality results of {PERIOD}")
    summary, table = _section_start(doc, "Sammendrag"), _section_start(doc, "Kontroller")
    if summary is None:
        problems.append("no heading 'Sammendrag'")
    else:
        problems += _expect_results_summary(summary, run)
    if table is None or table.tag != "table":
        return problems + ["no heading 'Kontroller' followed by the table of checks"]
    return problems + _expect_check_rows(table, run["checks"])


def _expect_results_summary(table: html.HtmlElement, run: dict) -> list[str]:
    """Period, GX version, run time, and the counts of checks by outcome and severity."""
    checks = run["checks"]
    statuses = [(_status(c["result"]), c["severity"]) for c in checks]

    def failed(severity: str) -> str:
        return str(sum(s in ("failed", "gx_error") and v == severity for s, v in statuses))

    cells = _labelled(table)
    expected = {
        "Periode (period)": PERIOD,
        "Great Expectations": run["gx_version"],
        "Kontroller i katalogen (catalogue checks)": str(len(checks)),
        "Kjørt (checks run)": str(sum(c["result"] is not None for c in checks)),
        "Bestått (passed)": str(sum(s == "passed" for s, _ in statuses)),
        "Feilet, feil (failed, error)": failed("error"),
        "Feilet, advarsel (failed, warning)": failed("warning"),
        "Ikke kjørt her (not run by GX)": str(sum(s == "not_run" for s, _ in statuses)),
    }
    problems = [
        f"Sammendrag shows {label} = {cells.get(label)!r}, the run {value!r}"
        for label, value in expected.items()
        if cells.get(label) != value
    ]
    if not cells.get("Kjørt (run at)"):
        problems.append("Sammendrag does not show when the checks ran")
    return problems


def _expect_check_rows(table: html.HtmlElement, checks: list[dict]) -> list[str]:
    """One row per catalogue check, in order, with its counts, status and failure text."""
    trs = table.xpath(".//tr[@data-check]")
    shown = [tr.get("data-check") for tr in trs]
    rows = dict(zip(shown, trs, strict=True))
    wanted = [c["id"] for c in checks]
    if shown != wanted:
        missing, extra = sorted(set(wanted) - set(shown)), sorted(set(shown) - set(wanted))
        return [f"the check rows are not the catalogue's: missing {missing}, extra {extra}"]
    problems = []
    for check in checks:
        cells = [_text(td) for td in rows[check["id"]].findall("td")]
        result, status = check["result"], _status(check["result"])
        if not cells[-1].endswith(STATUS_TEXT[status]):
            problems.append(f"{check['id']}: status {cells[-1]!r}, the run {status}")
        if status in ("passed", "failed"):
            counts = [re.sub(r"\D", "", cell) for cell in cells[5:7]]
            wanted_counts = [str(result["unexpected_count"]), str(result["element_count"])]
            if counts != wanted_counts:
                problems.append(f"{check['id']}: counts {cells[5:7]}, the run {wanted_counts}")
        if status in ("failed", "gx_error"):
            detail = table.xpath(f".//tr[@data-detail='{check['id']}']")
            if not detail or check["message"] not in _text(detail[0]):
                problems.append(f"{check['id']} failed but its message is not shown")
    return problems


# -- links and the screenshot -----------------------------------------------------------------


def _check_references(doc: html.HtmlElement, page: Path) -> list[str]:
    """Every reference resolves on this machine: a local file, an anchor, or inline data.

    A resource from the internet breaks the page on the register's network and tells a third
    party that, and when, the page was opened; a link out is a dead end there too.
    """
    anchors = set(doc.xpath("//@id | //a/@name"))
    broken, outside = [], []
    targets = [(tag, el.get(attr)) for tag, attr in REFERENCES for el in doc.iter(tag)]
    targets += [("row", value) for value in doc.xpath("//@data-href")]
    css = [el.text or "" for el in doc.iter("style")] + doc.xpath("//@style")
    targets += [("css", "".join(m)) for text in css for m in CSS_REFERENCE.findall(text)]
    for tag, value in targets:
        if value is None or not value.strip():
            continue
        parts = urlsplit(value.strip())
        if parts.scheme in IGNORED_SCHEMES:
            continue
        if parts.scheme not in LOCAL_SCHEMES or parts.netloc:
            outside.append(f"<{tag}> {value}")
        elif not parts.path:
            if parts.fragment and parts.fragment not in anchors:
                broken.append(f"<{tag}> {value} (no such anchor)")
        elif not (page.parent / unquote(parts.path)).exists():
            broken.append(f"<{tag}> {value}")
    problems = []
    if outside:
        problems.append(_listing(f"{len(outside)} reference(s) leave the machine:", outside))
    if broken:
        problems.append(_listing(f"{len(broken)} broken reference(s):", broken))
    return problems


BROWSER_OWN = "not an origin"
"""The initiator Chromium's net log gives the browser's own requests (its update and time
services, which the host-resolver rule fails anyway); a page's requests name the page's
origin (``null`` for a file)."""


def _check_requests(netlog: Path) -> list[str]:
    """No request the page made left the machine, as Chromium's own net log records them:
    every ``URL_REQUEST_START_JOB`` the page initiated is for a local (file, data) URL."""
    if not netlog.is_file():
        return ["chromium wrote no net log"]
    log = json.loads(netlog.read_text(encoding="utf-8"))
    start = log["constants"]["logEventTypes"]["URL_REQUEST_START_JOB"]
    outside = sorted(
        {
            params["url"]
            for event in log["events"]
            if event["type"] == start
            and (params := event.get("params", {})).get("url")
            and params.get("initiator") != BROWSER_OWN
            and urlsplit(params["url"]).scheme not in ("file", *IGNORED_SCHEMES)
        }
    )
    if outside:
        return [_listing(f"{len(outside)} request(s) left the machine:", outside)]
    return []


def _listing(title: str, items: list[str]) -> str:
    """A problem with one item per line, so a long list stays readable in a CI log."""
    return "\n".join([title, *(f"    {item}" for item in items)])


def _check_png(path: Path) -> list[str]:
    """A PNG of the window's size, not tiny, and with drawn content.

    "Drawn content" without an image library: the PNG's decompressed scanlines (filter byte
    plus pixels) of a single-colour image take only a couple of distinct values whatever the
    filters, while a page of text gives hundreds.
    """
    if not path.is_file():
        return ["no screenshot was written"]
    data = path.read_bytes()
    if not data.startswith(b"\x89PNG\r\n\x1a\n"):
        return [f"{path.name} is not a PNG"]
    header, idat, pos = b"", bytearray(), 8
    while pos + 8 <= len(data):
        length, kind = struct.unpack(">I4s", data[pos : pos + 8])
        body = data[pos + 8 : pos + 8 + length]
        if kind == b"IHDR":
            header = body
        elif kind == b"IDAT":
            idat += body
        pos += 12 + length
    width, height, depth, colour, _, _, interlace = struct.unpack(">IIBBBBB", header[:13])
    problems = []
    if len(data) < MIN_PNG_BYTES:
        problems.append(f"screenshot is only {len(data)} bytes (blank page?)")
    if (width, height) != WINDOW:
        problems.append(f"screenshot is {width}x{height}, not {WINDOW[0]}x{WINDOW[1]}")
    if depth == 8 and colour in PNG_CHANNELS and interlace == 0:
        raw = zlib.decompress(bytes(idat))
        stride = 1 + width * PNG_CHANNELS[colour]
        distinct = len({raw[i : i + stride] for i in range(0, len(raw), stride)})
        if distinct < MIN_DISTINCT_ROWS:
            problems.append(f"screenshot has {distinct} distinct pixel rows: nothing drawn")
    return problems


def _print_summary(pages: list[Page]) -> None:
    print(f"\ne2e summary (screenshots and DOMs in {OUT}):")
    for page in pages:
        verdict = "FAIL" if page.problems else "ok"
        print(f"  {verdict:4}  {page.name:18} {page.path.name}  -> .e2e/{page.name}.png")
        for problem in page.problems:
            print("          - " + problem.replace("\n", "\n          "))
    failed = sum(1 for page in pages if page.problems)
    print(f"{len(pages) - failed} of {len(pages)} pages passed")


if __name__ == "__main__":
    main()
