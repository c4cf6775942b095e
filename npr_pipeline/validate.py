"""``npr validate FILE...``: the register's answers to a file, given locally, without any HOME.

The register's "validation locally" for vendors: the same reader (gate, schema), the same
content catalogue and the same XPR_VAL / XPR_ERR writers as intake, run in a temporary
workspace that is removed afterwards, so nothing is archived, recorded or produced. A vendor
has no unit registry: without ``registry`` the checks that need one (who the sender is, whether
it is active and obliged to report the type, its organisation number in ``Institusjon``) are
not made; with a registry file they are, as intake makes them. Each file is checked alone, so
the rules that compare an ord with its ide, and the lopenr rules, which need the register's
ledger, are intake's alone. A file of any other type the folders describe (a report or a daily
event message) is read as intake reads it (:func:`npr_pipeline.intake.daily.read_daily`): its
XPR_VAL, and a report's catalogue findings in XPR_ERR; a daily event's content checks need the
register's consolidated state and are intake's alone too.
"""

from __future__ import annotations

import hashlib
import shutil
import tempfile
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime
from pathlib import Path

import pandas as pd

from npr_pipeline.feedback.reports import (
    display_files,
    read_report_findings,
    read_report_summary,
    write_xpr_err,
    write_xpr_val,
)
from npr_pipeline.intake.daily import daily_header, read_daily
from npr_pipeline.intake.gate import Header, RegistryIndex
from npr_pipeline.intake.reader import ReadResult, read_submission
from npr_pipeline.intake.reasons import Reason, Status, reason
from npr_pipeline.quality.submission import check_alone, submission_info
from npr_pipeline.registry import read_registry_csv
from npr_pipeline.settings import Settings
from npr_pipeline.store.ledger import LedgerRecord

CHUNK = 1 << 20


class _AnySender(RegistryIndex):
    """No registry: every sender passes as an unnamed unit, nothing is checked about it."""

    def __init__(self) -> None:
        super().__init__(pd.DataFrame(columns=["reshID", "orgnr", "herID"]))

    def resolve(self, idents: dict[str, list[str]]) -> tuple[dict[str, str] | None, None]:
        return None, None


@dataclass
class Answer:
    """One file's local answers: counts, reasons, findings, and where its reports are."""

    file: str
    submission_id: str
    message_type: str | None
    reasons: list[Reason]
    findings: list[dict]
    reports: dict[str, dict[str, str]] = field(default_factory=dict)

    counts: dict[str, int] = field(default_factory=dict)

    def count(self, severity: str) -> int:
        """Errors or warnings of both answers (all of them, also past a report's cap)."""
        return self.counts.get(severity, 0)

    @property
    def valid(self) -> bool:
        """No error in either answer (warnings do not refuse a file)."""
        return self.count("error") == 0

    def as_json(self) -> dict[str, object]:
        return {
            "file": self.file,
            "submission_id": self.submission_id,
            "message_type": self.message_type,
            "status": "valid" if self.valid else "invalid",
            "errors": self.count("error"),
            "warnings": self.count("warning"),
            "reports": self.reports or None,
            "findings": self.findings,
        }


def validate_files(
    files: list[Path],
    out: Path | None = None,
    registry: Path | None = None,
    allow_synthetic_fnr: bool = False,
) -> list[Answer]:
    """Answer every file; the reports go to ``out/<file stem>/`` (or nowhere: a temporary
    folder removed with the rest of the workspace). Raises ``RegistryError`` for a registry
    file that is not one."""
    index = RegistryIndex(read_registry_csv(registry)) if registry else _AnySender()
    answers: list[Answer] = []
    with tempfile.TemporaryDirectory(prefix="npr-validate-") as tmp:
        workspace = Path(tmp)
        for path in files:
            folder = _folder(out or workspace / "answers", path, answers)
            answer = _answer(path, index, workspace, folder, allow_synthetic_fnr)
            if out:  # the vendor opens the HTML and CSV; in a temporary folder nobody does
                display_files(folder)
            answers.append(answer if out else replace(answer, reports={}))
    return answers


def _folder(base: Path, path: Path, earlier: list[Answer]) -> Path:
    """``base/<stem>``; a second file of the same name gets its number too."""
    taken = {Path(a.file).stem for a in earlier}
    name = path.stem if path.stem not in taken else f"{path.stem}-{len(earlier) + 1}"
    return base / name


def _answer(
    path: Path, index: RegistryIndex, workspace: Path, folder: Path, allow_synthetic: bool
) -> Answer:
    checksum, size = _digest(path)
    sid = checksum[:16]
    staging = workspace / "staging" / sid
    received = datetime.now(UTC).replace(microsecond=0)
    limit = Settings().max_file_bytes
    shutil.rmtree(folder, ignore_errors=True)  # an earlier run's XPR_ERR must not stay beside
    header = daily_header(path) if size <= limit else None  # too large: the reader says so
    if header is not None:
        record, reasons = _answer_typed(
            path, header, index, folder, (sid, checksum, size, received)
        )
        return _collected(path, record, folder, reasons)
    read = read_submission(path, index, staging, sid, received.date(), limit)
    reasons = [*read.reasons, *read.gate.reasons, reason("local_validation", severity="info")]
    record = _record(read, sid, checksum, path.name, size, received.isoformat())
    unit_name = read.gate.unit["name"] if read.gate.unit else None
    info = replace(
        submission_info(record, unit_name), episodes=read.episodes, patients=read.patients
    )
    write_xpr_val(folder, info, reasons)
    if read.staged:
        check_alone(folder, record, read.staged, unit_name, allow_synthetic)
    shutil.rmtree(staging, ignore_errors=True)
    return _collected(path, record, folder, reasons)


def _answer_typed(
    path: Path,
    header: Header,
    index: RegistryIndex,
    folder: Path,
    file: tuple[str, str, int, datetime],
) -> tuple[LedgerRecord, list[Reason]]:
    """A report or daily event file, read and answered as intake answers it (a test file)."""
    sid, checksum, size, received = file
    daily = read_daily(path, header, index, sid)
    reasons = [*daily.reasons, *daily.gate.reasons, reason("local_validation", severity="info")]
    unit = daily.gate.unit
    record = LedgerRecord(
        sid, checksum, path.name, size, received.isoformat(), Status.TEST,
        unit=unit["reshID"] if unit else None, message_type=header.msg_type,
        version=daily.version, year=daily.year, lopenr=daily.lopenr,
        period_from=daily.attrs.get("fraDatoPeriode"), period_to=daily.attrs.get("tilDatoPeriode"),
    )  # fmt: skip
    info = submission_info(record, unit["name"] if unit else None)
    write_xpr_val(folder, info, reasons)
    if daily.findings:
        write_xpr_err(folder, info, daily.findings, [])
    return record, reasons


def _collected(path: Path, record: LedgerRecord, folder: Path, reasons: list[Reason]) -> Answer:
    """The answer from the reports written into ``folder``."""
    kinds = [k for k in ("XPR_VAL", "XPR_ERR") if (folder / f"{k}.xml").is_file()]
    reports = {
        k: {ext: str(folder / f"{k}.{ext}") for ext in ("xml", "html", "csv")} for k in kinds
    }
    summaries = read_report_summary(folder).values()
    counts = {kind: sum(s[f"{kind}s"] for s in summaries) for kind in ("error", "warning")}
    findings = read_report_findings(folder)
    sid = record.submission_id
    return Answer(path.name, sid, record.message_type, reasons, findings, reports, counts)


def _digest(path: Path) -> tuple[str, int]:
    """SHA-256 and size, read in chunks (a national file does not fit twice in memory)."""
    digest, size = hashlib.sha256(), 0
    with open(path, "rb") as fh:
        while chunk := fh.read(CHUNK):
            digest.update(chunk)
            size += len(chunk)
    return digest.hexdigest(), size


def _record(
    read: ReadResult, sid: str, checksum: str, file: str, size: int, received: str
) -> LedgerRecord:
    """What intake would record of the file, as a test file (it is never produced)."""
    dates = {
        "period_from": "fraDatoPeriode",
        "period_to": "tilDatoPeriode",
        "extracted": "uttakDato",
    }
    return LedgerRecord(
        sid,
        checksum,
        file,
        size,
        received,
        Status.TEST,
        unit=read.gate.unit["reshID"] if read.gate.unit else None,
        message_type=read.header.msg_type if read.header else None,
        version=read.version,
        year=read.year,
        lopenr=read.lopenr,
        episodes=read.episodes,
        patients=read.patients,
        **{field: _iso(read.date_attr(name)) for field, name in dates.items()},
    )


def _iso(value: date | None) -> str | None:
    return value.isoformat() if value is not None else None
