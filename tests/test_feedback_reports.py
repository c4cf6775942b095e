"""The feedback reports a unit receives: valid, escaped, deterministic, bounded, readable back."""

from __future__ import annotations

import csv
import functools
from dataclasses import replace
from html.parser import HTMLParser
from pathlib import Path

import pytest
from lxml import etree

from npr_pipeline.feedback import (
    MAX_FINDINGS,
    NAMESPACE,
    XSD_PATH,
    Finding,
    SubmissionInfo,
    read_report_summary,
    reports,
)
from npr_pipeline.feedback.reports import display_files
from npr_pipeline.intake.reasons import Reason, reason

# the display files written with the XML (intake leaves them to :func:`display_files`)
write_xpr_val = functools.partial(reports.write_xpr_val, display=True)
write_xpr_err = functools.partial(reports.write_xpr_err, display=True)

HOSTILE = 'bad <script>alert("x")</script> & <b>co</b>'

INFO = SubmissionInfo(
    submission_id="0123456789abcdef",
    file="NPR_ORD_974633574_2026_3.xml",
    received="2026-04-03T10:15:00+02:00",
    status="rejected",
    unit="4001031",
    unit_name="Testsykehuset HF",
    message_type="NPR_ORD",
    version="58.0.1",
    period="2026-01-01/2026-03-31",
    lopenr=3,
    checksum="ab" * 32,
    size=12_345,
    episodes=120,
    patients=80,
)

ACCEPTED = replace(INFO, status="accepted")

REASONS = [
    reason(
        "schema_error", "Element 'Episode': missing child 'innDato'.", line=41, element="Episode"
    ),
    reason("wrong_version", "57.0.1 is for 2025.", element="Melding"),
    Reason(code="older_than_current", message="A newer lopenr is current.", severity="warning"),
]

FINDINGS = [
    Finding(
        rule="episode_dates_in_order",
        severity="error",
        message=f"utDato before innDato in episode {i}",
        fix="Correct innDato/utDato in the EPJ.",
        episode_id=f"E{i}",
        patient_nr=f"P{i}",
        line=100 + i,
    )
    for i in range(25)
] + [Finding(rule="unknown_kommune", severity="warning", message="komNrHjem 9999", fix="Check it.")]

RULES = [
    {
        "rule": "episode_dates_in_order",
        "severity": "error",
        "category": "dates",
        "count": 40,
        "share": 40 / 120,
        "message": "utDato is before innDato.",
        "fix": "Correct innDato/utDato in the EPJ.",
    }
]


@functools.cache
def _schema() -> etree.XMLSchema:
    return etree.XMLSchema(etree.parse(str(XSD_PATH)))


def _assert_valid(path: Path) -> etree._Element:
    doc = etree.parse(str(path))
    schema = _schema()
    assert schema.validate(doc), schema.error_log
    return doc.getroot()


def _funn(root: etree._Element) -> list[etree._Element]:
    return root.findall(f"{{{NAMESPACE}}}Funn")


def _csv_rows(path: Path) -> list[list[str]]:
    with open(path, encoding="utf-8-sig", newline="") as fh:
        return list(csv.reader(fh))


class _Headings(HTMLParser):
    """Collects h1-h3 texts and every tag name, to check what a browser would show."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[str] = []
        self.headings: list[str] = []
        self.attrs: list[tuple[str, str | None]] = []
        self._in_heading = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        self.attrs.extend(attrs)
        if tag in {"h1", "h2", "h3"}:
            self._in_heading = True
            self.headings.append("")

    def handle_endtag(self, tag: str) -> None:
        if tag in {"h1", "h2", "h3"}:
            self._in_heading = False

    def handle_data(self, data: str) -> None:
        if self._in_heading:
            self.headings[-1] += data


def _page(path: Path) -> _Headings:
    parser = _Headings()
    parser.feed(path.read_text(encoding="utf-8"))
    return parser


def test_every_xml_validates_against_the_xsd(tmp_path: Path) -> None:
    val = write_xpr_val(tmp_path / "a", INFO, REASONS)
    err = write_xpr_err(tmp_path / "a", INFO, FINDINGS, RULES)
    empty = write_xpr_val(tmp_path / "b", replace(ACCEPTED, unit=None, lopenr=None), [])
    for paths in (val, err, empty):
        assert set(paths) == {"xml", "html", "csv"}
        assert all(p.is_file() for p in paths.values())
        _assert_valid(paths["xml"])
    root = _assert_valid(val["xml"])
    assert root.get("type") == "XPR_VAL"
    assert root.get("generated") == INFO.received
    assert [f.get("code") for f in _funn(root)] == [r.code for r in REASONS]
    assert _funn(root)[0].get("line") == "41"


def test_xsd_rejects_a_report_outside_the_contract(tmp_path: Path) -> None:
    """The schema is a real check: an unknown status must not validate."""
    paths = write_xpr_val(tmp_path, INFO, REASONS)
    doc = etree.parse(str(paths["xml"]))
    doc.getroot().set("status", "maybe")
    assert not _schema().validate(doc)


def test_hostile_text_is_escaped_in_html_and_xml(tmp_path: Path) -> None:
    info = replace(INFO, file="x<script>.xml", unit_name="A & B")
    paths = write_xpr_val(tmp_path, info, [reason("schema_error", HOSTILE, element="<img>")])
    html = paths["html"].read_text(encoding="utf-8")
    assert "<script" not in html and "<b>co" not in html and "<img>" not in html
    assert "&lt;script&gt;" in html and "&amp; &lt;b&gt;co" in html and "A &amp; B" in html
    page = _page(paths["html"])
    assert "script" not in page.tags and "b" not in page.tags

    raw = paths["xml"].read_bytes()
    assert b"<script" not in raw and b"&amp; &lt;b&gt;" in raw
    root = _assert_valid(paths["xml"])
    assert HOSTILE in _funn(root)[0].get("message")
    assert root.get("file") == "x<script>.xml"


def test_characters_xml_cannot_hold_are_replaced(tmp_path: Path) -> None:
    paths = write_xpr_val(tmp_path, INFO, [reason("not_xml", "byte \x00 and \x0b and \udcff")])
    message = _funn(_assert_valid(paths["xml"]))[0].get("message")
    assert "\x00" not in message and "\ufffd" in message


def test_csv_neutralises_formulas(tmp_path: Path) -> None:
    formulas = ['=HYPERLINK("http://evil","x")', "+1+1", "-2+3", "@SUM(A1)"]
    reasons = [Reason(code="schema_error", message=f, element=f) for f in formulas]
    paths = write_xpr_val(tmp_path, INFO, reasons)
    assert paths["csv"].read_bytes().startswith(b"\xef\xbb\xbf")
    rows = _csv_rows(paths["csv"])
    assert rows[0] == [
        "type",
        "submission_id",
        "code",
        "severity",
        "line",
        "element",
        "episodeID",
        "pasientNr",
        "message",
        "fix",
    ]
    for formula, row in zip(formulas, rows[1:], strict=True):
        assert row[8] == "'" + formula and row[5] == "'" + formula
    assert rows[1][:4] == ["XPR_VAL", INFO.submission_id, "schema_error", "error"]


def test_same_inputs_give_byte_identical_reports(tmp_path: Path) -> None:
    def write_all(folder: Path) -> dict[str, bytes]:
        paths = {**write_xpr_val(folder, INFO, REASONS)}
        paths |= {f"err_{k}": p for k, p in write_xpr_err(folder, INFO, FINDINGS, RULES).items()}
        return {k: p.read_bytes() for k, p in paths.items()}

    first = write_all(tmp_path / "one")
    assert write_all(tmp_path / "two") == first
    assert write_all(tmp_path / "one") == first  # a rerun over existing reports
    assert sorted(p.name for p in (tmp_path / "one").iterdir()) == sorted(
        f"XPR_{t}.{e}" for t in ("VAL", "ERR") for e in ("xml", "html", "csv")
    )  # and no temporary files left behind


def test_accepted_file_says_no_errors(tmp_path: Path) -> None:
    val = write_xpr_val(tmp_path, ACCEPTED, [])
    err = write_xpr_err(tmp_path, ACCEPTED, [], [])
    for paths in (val, err):
        assert "Ingen feil funnet" in paths["html"].read_text(encoding="utf-8")
        assert len(_csv_rows(paths["csv"])) == 1
    rejected = write_xpr_val(tmp_path / "r", INFO, REASONS)
    assert "Ingen feil funnet" not in rejected["html"].read_text(encoding="utf-8")


def test_pages_are_self_contained_with_the_expected_headings(tmp_path: Path) -> None:
    for paths in (write_xpr_val(tmp_path, INFO, REASONS), write_xpr_err(tmp_path, INFO, [], RULES)):
        html = paths["html"].read_text(encoding="utf-8")
        assert '<html lang="no">' in html
        page = _page(paths["html"])
        assert "title" in page.tags
        assert {"Sammendrag", "Funn"} <= set(page.headings)
        assert not {"script", "link", "img", "iframe"} & set(page.tags)
        assert not [a for a in page.attrs if a[0] in {"href", "src"}]
    assert "Skjemavalideringsrapport (XPR_VAL)" in _page(tmp_path / "XPR_VAL.html").headings


def test_xpr_err_html_shows_count_examples_and_fix_per_rule(tmp_path: Path) -> None:
    paths = write_xpr_err(tmp_path, INFO, FINDINGS, RULES)
    html = paths["html"].read_text(encoding="utf-8")
    assert html.index("<h2>Sammendrag</h2>") < html.index("<h2>Funn</h2>")
    assert "E19<" in html and "E20<" not in html  # first 20 examples only
    assert "De første 20 av 40" in html
    assert "Correct innDato/utDato in the EPJ." in html
    assert "33.3 %" in html
    # a rule with findings but no summary row is counted from its findings
    summary = read_report_summary(tmp_path)["XPR_ERR"]
    assert [r["rule"] for r in summary["rules"]] == ["episode_dates_in_order", "unknown_kommune"]
    assert summary["errors"] == 40 and summary["warnings"] == 1
    assert summary["findings"] == len(FINDINGS)


def test_display_files_on_request_are_the_bytes_written_at_once(tmp_path: Path) -> None:
    """A daily file's answers are written as XML only; the HTML and CSV rendered from them on
    request are what intake used to write, hostile text, rule shares and the plain-Norwegian
    explanation of a schema error included."""
    hostile = [*FINDINGS, Finding("unknown_kommune", "warning", HOSTILE, HOSTILE, value=HOSTILE)]
    explained = reason("schema_error", "Element '{x}Tilstand', attribute 'tilstNr': [facet "
                       "'maxInclusive'] The value '99' is greater than the maximum value "
                       "allowed ('30').", line=7, element="Tilstand")  # fmt: skip
    at_once, on_request = tmp_path / "at-once", tmp_path / "on-request"
    for folder, display in ((at_once, True), (on_request, False)):
        write_xpr_val(folder, INFO, [*REASONS, explained], display=display)
        write_xpr_err(folder, INFO, hostile, RULES, display=display)
    assert sorted(p.name for p in on_request.iterdir()) == ["XPR_ERR.xml", "XPR_VAL.xml"]
    rendered = display_files(on_request)
    assert [p.name for p in rendered] == [
        "XPR_VAL.html",
        "XPR_VAL.csv",
        "XPR_ERR.html",
        "XPR_ERR.csv",
    ]
    assert "Attributtet tilstNr på Tilstand" in rendered[0].read_text(encoding="utf-8")
    for path in rendered:
        assert path.read_bytes() == (at_once / path.name).read_bytes(), path.name
    assert display_files(on_request) == rendered
    assert display_files(tmp_path / "nothing") == []


def test_findings_are_capped(tmp_path: Path) -> None:
    extra = 7
    reasons = [reason("schema_error", f"error {i}", line=i) for i in range(MAX_FINDINGS + extra)]
    # the XML holds only the first MAX_FINDINGS rows: the display files are written at once
    paths = write_xpr_val(tmp_path, INFO, reasons, display=False)
    root = _assert_valid(paths["xml"])
    assert len(_funn(root)) == MAX_FINDINGS
    left_out = root.find(f"{{{NAMESPACE}}}Utelatt")
    assert left_out is not None and left_out.get("count") == str(extra)
    rows = _csv_rows(paths["csv"])
    assert len(rows) == 1 + MAX_FINDINGS + 1
    assert rows[-1][2] == "omitted" and rows[-1][8].startswith(f"{extra} more findings")
    html = paths["html"].read_text(encoding="utf-8")
    assert f"{extra} more findings were not written" in html
    assert f"error {MAX_FINDINGS - 1}<" in html and f"error {MAX_FINDINGS}<" not in html
    summary = read_report_summary(tmp_path)["XPR_VAL"]
    assert (summary["errors"], summary["written"], summary["omitted"]) == (
        MAX_FINDINGS + extra,
        MAX_FINDINGS,
        extra,
    )


def test_read_report_summary_round_trips(tmp_path: Path) -> None:
    assert read_report_summary(tmp_path) == {}
    write_xpr_val(tmp_path, INFO, REASONS)
    only_val = read_report_summary(tmp_path)
    assert set(only_val) == {"XPR_VAL"}
    write_xpr_err(tmp_path, ACCEPTED, FINDINGS, RULES)
    summary = read_report_summary(tmp_path)
    val, err = summary["XPR_VAL"], summary["XPR_ERR"]
    assert val["status"] == "rejected" and err["status"] == "accepted"
    assert (val["errors"], val["warnings"], val["infos"]) == (2, 1, 0)
    assert val["codes"] == {"schema_error": 1, "wrong_version": 1, "older_than_current": 1}
    assert val["lopenr"] == 3 and val["size"] == INFO.size and val["episodes"] == 120
    assert val["submission_id"] == INFO.submission_id and val["unit_name"] == INFO.unit_name
    assert err["rules"][0]["count"] == 40 and err["rules"][0]["share"] == pytest.approx(1 / 3)


def test_unknown_severity_or_status_fails_loudly(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="severity"):
        write_xpr_val(tmp_path, INFO, [Reason(code="x", message="m", severity="fatal")])
    with pytest.raises(ValueError, match="status"):
        write_xpr_val(tmp_path, replace(INFO, status="maybe"), [])
    assert not list(tmp_path.iterdir())
