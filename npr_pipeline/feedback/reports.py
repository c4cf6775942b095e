"""Feedback reports to a reporting unit: XPR_VAL (schema validation) and XPR_ERR (content).

Each report exists three ways from the same rows: XML for the unit's systems (our own
namespace, schema in ``schema/xpr_feedback.xsd``), HTML for a browser and CSV for a
spreadsheet. Intake (both routes, the test route) and the content checks write only the XML
(the writers' default): most display files are never opened, and on the national April they were
15,112 of the 22,668 files under ``feedback/`` (docs/benchmarks.md, session 10).
:func:`display_files` renders them from the XML when asked (``npr feedback``, the day's
e-mail, ``npr validate --out``), the same bytes intake wrote before, and keeps them beside it
stamped with its time so a rewritten XML is rendered again.

Almost everything in a report can come from an untrusted file (file names,
element names, values quoted in messages), so every text is cleaned of characters XML cannot
hold and length-capped once, then escaped by each format's writer (lxml, jinja2 autoescape,
csv plus a formula guard). Reports carry no wall-clock time: rerunning intake on the same
bytes must give byte-identical reports.
"""

from __future__ import annotations

import csv
import errno
import functools
import os
import re
import tempfile
from collections import Counter
from dataclasses import dataclass, fields, replace
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import jinja2
from lxml import etree

from npr_pipeline.atomic import atomic_open, write_bytes, write_text
from npr_pipeline.feedback.schema_messages import explain, mask_fodselsnummer
from npr_pipeline.intake.reasons import CODES, Reason, Status
from npr_pipeline.templating import html_environment

NAMESPACE = "http://npr-pipeline.example/xmlstds/xpr_feedback/1"
XSD_PATH = Path(__file__).resolve().parent / "schema" / "xpr_feedback.xsd"

OSLO = ZoneInfo("Europe/Oslo")  # the pages show times in Norwegian local time
XPR_VAL = "XPR_VAL"
XPR_ERR = "XPR_ERR"
MAX_FINDINGS = 10_000  # per report: a broken national file must not give a 2 GB report
MAX_TEXT = 2_000  # characters per text value, for the same reason
EXAMPLES_PER_RULE = 20
SEVERITIES = ("error", "warning", "info")
CSV_HEADER = (
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
)

# Root attribute -> SubmissionInfo field, in document order (also used to read reports back).
_HEADER = {
    "submissionId": "submission_id",
    "file": "file",
    "received": "received",
    "generated": "received",
    "status": "status",
    "unit": "unit",
    "unitName": "unit_name",
    "messageType": "message_type",
    "version": "version",
    "period": "period",
    "lopenr": "lopenr",
    "checksum": "checksum",
    "size": "size",
    "episodes": "episodes",
    "patients": "patients",
}
_INT_FIELDS = {"lopenr", "size", "episodes", "patients"}
_SUMMARY_KEYS = ("errors", "warnings", "infos", "findings", "written", "omitted")
# Characters XML 1.0 cannot carry (controls, lone surrogates, U+FFFE/FFFF).
_NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


@dataclass(frozen=True)
class SubmissionInfo:
    """What a report says about the file it answers; intake fills it from the ledger row."""

    submission_id: str  # 16 hex chars
    file: str  # original file name
    received: str  # ISO datetime
    status: str  # accepted | rejected | duplicate | test
    unit: str | None  # reshID
    unit_name: str | None
    message_type: str | None  # NPR_ORD / NPR_IDE
    version: str | None  # 58.0.1
    period: str | None  # e.g. "2026-01-01/2026-03-31"
    lopenr: int | None
    checksum: str  # sha256 hex
    size: int  # bytes
    episodes: int = 0
    patients: int = 0


_TEXT_FIELDS = tuple(f.name for f in fields(SubmissionInfo) if f.name not in _INT_FIELDS)
_STATUSES = frozenset(s.value for s in Status)


@dataclass(frozen=True)
class Finding:
    """One row of an XPR_ERR report: a content rule that failed for one record."""

    rule: str  # check id, e.g. "episode_dates_in_order"
    severity: str  # error | warning
    message: str  # what is wrong, for the coordinator
    fix: str  # what to do about it
    episode_id: str | None = None
    patient_nr: str | None = None
    line: int | None = None
    value: str | None = None  # the value at fault (a fødselsnummer only masked)


@dataclass(frozen=True)
class _Row:
    """A finding of either report, cleaned; the one shape all three writers read."""

    code: str
    severity: str
    message: str
    fix: str | None = None
    line: int | None = None
    element: str | None = None
    episode_id: str | None = None
    patient_nr: str | None = None
    explanation: str | None = None  # the message in plain Norwegian (HTML only)
    value: str | None = None  # XPR_ERR: the value at fault


@dataclass(frozen=True)
class _Rule:
    """One line of an XPR_ERR rule summary, cleaned."""

    rule: str
    severity: str
    count: int
    message: str
    category: str | None = None
    share: float | None = None
    fix: str | None = None


@dataclass(frozen=True)
class _Report:
    """Everything one report file set shows, ready for the writers."""

    kind: str
    info: SubmissionInfo
    rows: list[_Row]
    rules: list[_Rule]
    counts: dict[str, int]

    @property
    def written(self) -> list[_Row]:
        return self.rows[:MAX_FINDINGS]

    @property
    def omitted(self) -> int:
        return max(0, len(self.rows) - MAX_FINDINGS)


def write_xpr_val(
    folder: Path, info: SubmissionInfo, reasons: list[Reason], display: bool = False
) -> dict[str, Path]:
    """Write the schema validation report (XPR_VAL.xml, and with ``display`` .html/.csv) for
    one submission; without, the display files are rendered on request (:func:`display_files`)."""
    rows = [_row_from_reason(r) for r in reasons]
    counts = Counter(row.severity for row in rows)
    report = _Report(XPR_VAL, _clean_info(info), rows, [], _counts(counts))
    return _write(folder, report, display)


def write_xpr_err(
    folder: Path,
    info: SubmissionInfo,
    findings: list[Finding],
    rule_summary: list[dict],
    display: bool = False,
) -> dict[str, Path]:
    """Write the content validation report (XPR_ERR.xml, and with ``display`` .html/.csv) for
    one submission.

    ``rule_summary`` rows ({"rule", "severity", "category", "count", "share", "message",
    "fix"}; share a fraction 0-1 of the episodes) carry the full count per rule, so
    ``findings`` may be a sample. A rule with findings but no summary row is counted from its
    findings.
    """
    rows = [_row_from_finding(f) for f in findings]
    rules = _rules(rows, rule_summary)
    counts: Counter[str] = Counter()
    for rule in rules:
        counts[rule.severity] += rule.count
    report = _Report(XPR_ERR, _clean_info(info), rows, rules, _counts(counts))
    return _write(folder, report, display)


def display_files(folder: Path) -> list[Path]:
    """The HTML and CSV files of the reports in ``folder``, rendered from each XML whose display
    files are missing or older than it, and kept beside it so a second request reads them.

    A display file carries its XML's modification time (:func:`_stamp`): one rendered from an
    XML that was replaced meanwhile (a delivery checked again while a reader renders) differs
    from the new XML's time and is rendered again on the next request. Writes are atomic, so two
    readers at once each write the same bytes whole. When ``folder`` cannot be written (a
    read-only HOME, an auditor's mount) the files are rendered into a new temporary folder
    instead, and those paths returned: a reader can always see the answer.
    """
    paths: list[Path] = []
    spare: list[Path] = []  # the temporary folder, made at most once per call
    for kind in (XPR_VAL, XPR_ERR):
        xml = folder / f"{kind}.xml"
        try:
            stamp = xml.stat()
        except FileNotFoundError:
            continue
        shown = [xml.with_suffix(".html"), xml.with_suffix(".csv")]
        if not all(_fresh(path, stamp) for path in shown):
            shown = _render(xml, shown, stamp, spare)
        paths += shown
    return paths


def _fresh(path: Path, stamp: os.stat_result) -> bool:
    """Whether a display file was rendered from the XML as it is now (it carries its time)."""
    try:
        return path.stat().st_mtime_ns == stamp.st_mtime_ns
    except FileNotFoundError:
        return False


def _render(xml: Path, shown: list[Path], stamp: os.stat_result, spare: list[Path]) -> list[Path]:
    """Render one XML's display files to ``shown`` (or, read-only, into the spare folder).

    The XML of a report cut at ``MAX_FINDINGS`` cannot give its display files back (its HTML
    takes examples from every row): the ones intake wrote with it are kept, only stamped.
    """
    if all(path.is_file() for path in shown) and _omitted_in(xml):
        _stamp(shown, stamp)
        return shown
    report = _report_from_xml(xml)
    try:
        _write_display(shown, report)
    except OSError as exc:
        if exc.errno not in (errno.EACCES, errno.EPERM, errno.EROFS):
            raise
        if not spare:
            spare.append(Path(tempfile.mkdtemp(prefix=f"npr-feedback-{xml.parent.name}-")))
        shown = [spare[0] / path.name for path in shown]
        _write_display(shown, report)
        return shown
    _stamp(shown, stamp)
    return shown


def _omitted_in(xml: Path) -> bool:
    numbers = _parse(xml).find(_q("Sammendrag"))
    return int(numbers.get("omitted", "0")) > 0


def _stamp(paths: list[Path], stamp: os.stat_result) -> None:
    """Give display files their XML's modification time, which :func:`_fresh` compares."""
    for path in paths:
        os.utime(path, ns=(stamp.st_atime_ns, stamp.st_mtime_ns))


def read_report_summary(folder: Path) -> dict:
    """Summaries of the XPR_VAL/XPR_ERR XML files present in ``folder`` (for ``npr feedback``).

    Reads the XML, not the HTML or CSV: it is the one format with a schema.
    """
    summary: dict[str, dict] = {}
    for kind in (XPR_VAL, XPR_ERR):
        path = folder / f"{kind}.xml"
        if path.is_file():
            summary[kind] = _summary_from_xml(path)
    return summary


def read_report_findings(folder: Path) -> list[dict]:
    """Every finding the XPR_VAL and XPR_ERR XML files in ``folder`` hold, in report order.

    Each as ``npr feedback --json`` shows it: ``{"report", "rule", "severity", "record",
    "message", "fix"}``; ``record`` has what applies of ``episodeID``, ``pasientNr``, ``line``
    and ``element``.
    """
    found: list[dict] = []
    for kind in (XPR_VAL, XPR_ERR):
        path = folder / f"{kind}.xml"
        if not path.is_file():
            continue
        for funn in _parse(path).iterfind(_q("Funn")):
            record = {
                key: int(value) if key == "line" else value
                for key in ("episodeID", "pasientNr", "line", "element", "value")
                if (value := funn.get(key)) is not None
            }
            found.append(
                {
                    "report": kind,
                    "rule": funn.get("code"),
                    "severity": funn.get("severity"),
                    "record": record,
                    "message": funn.get("message"),
                    "fix": funn.get("fix"),
                }
            )
    return found


# -- building the report -----------------------------------------------------------------


def _clean(text: object) -> str:
    """Text that XML 1.0 can hold and that stays small, whatever the submitted file contained."""
    cleaned = _NOT_XML.sub("\ufffd", str(text))
    return cleaned if len(cleaned) <= MAX_TEXT else cleaned[: MAX_TEXT - 1] + "…"


def _clean_opt(text: object | None) -> str | None:
    return None if text is None else _clean(text)


def _severity(value: str) -> str:
    """Fail at the writer, not in a unit's parser, when a caller passes an unknown severity."""
    if value not in SEVERITIES:
        raise ValueError(f"unknown severity {value!r}; known: {', '.join(SEVERITIES)}")
    return value


def _clean_info(info: SubmissionInfo) -> SubmissionInfo:
    """The info with every text cleaned and the status checked against the contract (a new
    info only when a text changed: most are clean, and a copy per report cost ~0.1 ms)."""
    if str(info.status) not in _STATUSES:
        raise ValueError(f"unknown status {info.status!r}")
    texts = {}
    for name in _TEXT_FIELDS:
        value = getattr(info, name)
        if value is not None and (type(value) is not str or _clean(value) != value):
            texts[name] = _clean(value)
    return replace(info, **texts) if texts else info


def _row_from_reason(reason: Reason) -> _Row:
    message = mask_fodselsnummer(reason.message)  # CONTRACT.md: never a fødselsnummer
    explanation = explain(message) if reason.code == "schema_error" else None
    return _Row(
        code=_clean(reason.code),
        severity=_severity(reason.severity),
        message=_clean(message),
        line=reason.line,
        element=_clean_opt(reason.element),
        explanation=_clean_opt(explanation),
    )


def _row_from_finding(finding: Finding) -> _Row:
    return _Row(
        code=_clean(finding.rule),
        severity=_severity(finding.severity),
        message=_clean(finding.message),
        fix=_clean_opt(finding.fix),
        line=finding.line,
        episode_id=_clean_opt(finding.episode_id),
        patient_nr=_clean_opt(finding.patient_nr),
        value=_clean_opt(None if finding.value is None else mask_fodselsnummer(finding.value)),
    )


def _rules(rows: list[_Row], rule_summary: list[dict]) -> list[_Rule]:
    """The rule summary, completed from the findings, most serious and most frequent first."""
    given = [
        _Rule(
            rule=_clean(d["rule"]),
            severity=_severity(d["severity"]),
            count=int(d["count"]),
            message=_clean(d["message"]),
            category=_clean_opt(d.get("category")),
            share=None if d.get("share") is None else float(d["share"]),
            fix=_clean_opt(d.get("fix")),
        )
        for d in rule_summary
    ]
    known = {rule.rule for rule in given}
    counted = Counter(row.code for row in rows if row.code not in known)
    first: dict[str, _Row] = {}
    for row in rows:
        first.setdefault(row.code, row)
    derived = [
        _Rule(code, first[code].severity, n, first[code].message, fix=first[code].fix)
        for code, n in counted.items()
    ]
    return sorted(given + derived, key=lambda r: (SEVERITIES.index(r.severity), -r.count, r.rule))


def _counts(counter: Counter[str]) -> dict[str, int]:
    return {severity: counter.get(severity, 0) for severity in SEVERITIES}


def _write(folder: Path, report: _Report, display: bool) -> dict[str, Path]:
    """Write the files of one report, each atomically: the XML, and the display files when
    asked or when the XML cannot give them back (rows past ``MAX_FINDINGS`` are not in it, and
    the HTML takes each rule's examples from all rows). Without them, display files an earlier
    XML of this report left are removed: they no longer say what the XML says."""
    display = display or bool(report.omitted)
    paths = {ext: folder / f"{report.kind}.{ext}" for ext in ("xml", "html", "csv")}
    write_bytes(paths["xml"], _xml(report), durable=False)
    shown = [paths["html"], paths["csv"]]
    if not display:
        for path in shown:
            path.unlink(missing_ok=True)
        return {"xml": paths["xml"]}
    _write_display(shown, report)
    _stamp(shown, paths["xml"].stat())
    return paths


def _write_display(paths: list[Path], report: _Report) -> None:
    """The HTML and CSV of a report, to ``paths`` (html, csv), each atomically."""
    write_text(paths[0], _html(report), durable=False)
    _write_csv(paths[1], report)


# -- XML ----------------------------------------------------------------------------------


def _q(name: str) -> str:
    return f"{{{NAMESPACE}}}{name}"


def _attrs(pairs: dict[str, object | None]) -> dict[str, str]:
    """XML attributes from the values that are present (None means: leave it out)."""
    return {name: str(value) for name, value in pairs.items() if value is not None}


def _xml(report: _Report) -> bytes:
    """The report as XML in our namespace; lxml escapes every value."""
    header = {name: getattr(report.info, field) for name, field in _HEADER.items()}
    root = etree.Element(
        _q("Tilbakemelding"), _attrs({"type": report.kind, **header}), nsmap={None: NAMESPACE}
    )
    etree.SubElement(root, _q("Sammendrag"), _attrs(_summary_numbers(report)))
    for rule in report.rules:
        etree.SubElement(root, _q("Regel"), _attrs(_rule_attrs(rule)))
    for row in report.written:
        etree.SubElement(root, _q("Funn"), _attrs(_row_attrs(row)))
    if report.omitted:
        left_out = etree.SubElement(root, _q("Utelatt"), count=str(report.omitted))
        left_out.text = _omitted_text(report.omitted)
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8", pretty_print=True)


def _summary_numbers(report: _Report) -> dict[str, int]:
    return {
        "errors": report.counts["error"],
        "warnings": report.counts["warning"],
        "infos": report.counts["info"],
        "findings": len(report.rows),
        "written": len(report.written),
        "omitted": report.omitted,
    }


def _rule_attrs(rule: _Rule) -> dict[str, object | None]:
    return {
        "rule": rule.rule,
        "severity": rule.severity,
        "category": rule.category,
        "count": rule.count,
        "share": None if rule.share is None else repr(rule.share),
        "message": rule.message,
        "fix": rule.fix,
    }


def _row_attrs(row: _Row) -> dict[str, object | None]:
    return {
        "code": row.code,
        "severity": row.severity,
        "message": row.message,
        "line": row.line,
        "element": row.element,
        "episodeID": row.episode_id,
        "pasientNr": row.patient_nr,
        "value": row.value,
        "fix": row.fix,
    }


def _omitted_text(omitted: int) -> str:
    return f"{omitted} more findings were not written (a report holds at most {MAX_FINDINGS})."


def _summary_from_xml(path: Path) -> dict:
    """The header, counts and per-code/per-rule numbers of one report XML."""
    root = _parse(path)
    doc: dict = {"type": root.get("type")}
    for name, field in _HEADER.items():
        value = root.get(name)
        doc[field] = int(value) if value is not None and field in _INT_FIELDS else value
    numbers = root.find(_q("Sammendrag"))
    doc.update({key: int(numbers.get(key, "0")) for key in _SUMMARY_KEYS})
    doc["codes"] = dict(Counter(funn.get("code") for funn in root.iterfind(_q("Funn"))))
    doc["rules"] = [_rule_from_xml(el) for el in root.iterfind(_q("Regel"))]
    return doc


def _report_from_xml(path: Path) -> _Report:
    """The report an XML file was written from (every row in it: one written without display
    files has none omitted); the plain-Norwegian explanation of a schema error is derived from
    its message again, as the writer did."""
    root = _parse(path)
    header = {}
    for name, field in _HEADER.items():
        value = root.get(name)
        header[field] = int(value) if value is not None and field in _INT_FIELDS else value
    rows = [
        _Row(
            code=funn.get("code"),
            severity=funn.get("severity"),
            message=funn.get("message"),
            fix=funn.get("fix"),
            line=None if funn.get("line") is None else int(funn.get("line")),
            element=funn.get("element"),
            episode_id=funn.get("episodeID"),
            patient_nr=funn.get("pasientNr"),
            explanation=_clean_opt(explain(funn.get("message")))
            if funn.get("code") == "schema_error"
            else None,
            value=funn.get("value"),
        )
        for funn in root.iterfind(_q("Funn"))
    ]
    rules = [_Rule(**_rule_from_xml(el)) for el in root.iterfind(_q("Regel"))]
    numbers = root.find(_q("Sammendrag"))
    counts = {severity: int(numbers.get(f"{severity}s", "0")) for severity in SEVERITIES}
    return _Report(root.get("type"), SubmissionInfo(**header), rows, rules, counts)


def _parse(path: Path) -> etree._Element:
    """The root of one of our report XML files (no entities, no network)."""
    parser = etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=False)
    root = etree.parse(str(path), parser).getroot()
    if root.tag != _q("Tilbakemelding"):
        raise ValueError(f"{path} is not an npr-pipeline feedback report")
    return root


def _rule_from_xml(el: etree._Element) -> dict:
    share = el.get("share")
    return {
        "rule": el.get("rule"),
        "severity": el.get("severity"),
        "category": el.get("category"),
        "count": int(el.get("count")),
        "share": None if share is None else float(share),
        "message": el.get("message"),
        "fix": el.get("fix"),
    }


# -- HTML ---------------------------------------------------------------------------------

_STATUS_TEXT = {
    "accepted": ("Godkjent (accepted)", "Filen er tatt imot og brukes i produksjonen."),
    "rejected": (
        "Avvist (rejected)",
        "Filen er avvist og ikke tatt inn. Rett feilene nedenfor og send hele filen på nytt.",
    ),
    "duplicate": (
        "Duplikat (duplicate)",
        "Nøyaktig den samme filen er mottatt før; ingenting er endret.",
    ),
    "test": (
        "Test (test)",
        "Filen er kontrollert og besvart, men aldri tatt inn i produksjonen.",
    ),
}


@functools.cache
def _environment() -> jinja2.Environment:
    """One environment per process: templates are parsed once."""
    return html_environment()


def _html(report: _Report) -> str:
    """The report as one self-contained page (inline CSS, no scripts, no external links)."""
    label, meaning = _STATUS_TEXT[str(report.info.status)]
    return (
        _environment()
        .get_template("feedback.html.j2")
        .render(
            kind=report.kind,
            info=report.info,
            received_local=local_time(report.info.received),
            status_label=label,
            status_meaning=meaning,
            counts=report.counts,
            rows=report.written,
            omitted_text=_omitted_text(report.omitted) if report.omitted else None,
            rules=[(rule, _examples(report.rows, rule.rule)) for rule in report.rules],
            examples_per_rule=EXAMPLES_PER_RULE,
            legend=_legend(report),
        )
    )


def local_time(moment: str | None) -> str:
    """An ISO 8601 time as a Norwegian reads it: Oslo time, ``31.01.2026 kl. 14:30``."""
    if not moment:
        return ""
    try:
        parsed = datetime.fromisoformat(moment)
    except ValueError:
        return moment
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(OSLO).strftime("%d.%m.%Y kl. %H:%M")


def _examples(rows: list[_Row], rule: str) -> list[_Row]:
    """The first examples of one rule, taken from all rows so the cap cannot hide a rule."""
    found: list[_Row] = []
    for row in rows:
        if row.code == rule:
            found.append(row)
            if len(found) == EXAMPLES_PER_RULE:
                break
    return found


def _legend(report: _Report) -> list[tuple[str, str]]:
    """What each intake code in this XPR_VAL means (content rules explain themselves)."""
    if report.kind != XPR_VAL:
        return []
    codes = sorted({row.code for row in report.written if row.code in CODES})
    return [(code, CODES[code]) for code in codes]


# -- CSV ----------------------------------------------------------------------------------


def _csv_cell(value: object | None) -> str:
    """A cell a spreadsheet shows as text: no formula can start it (CSV injection)."""
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(_FORMULA_START) else text


def _write_csv(path: Path, report: _Report) -> None:
    """The findings as CSV, UTF-8 with BOM so Excel detects the encoding."""
    sid = report.info.submission_id
    with atomic_open(path, "w", durable=False, encoding="utf-8-sig", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(CSV_HEADER)
        for row in report.written:
            cells = (report.kind, sid, row.code, row.severity, row.line, row.element)
            cells += (row.episode_id, row.patient_nr, row.message, row.fix)
            writer.writerow([_csv_cell(cell) for cell in cells])
        if report.omitted:
            cells = (report.kind, sid, "omitted", "info", None, None, None, None)
            writer.writerow([_csv_cell(c) for c in (*cells, _omitted_text(report.omitted), None)])
