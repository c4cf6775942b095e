"""The daily route in the main process: one intake batch of accepted daily files.

The protocol of docs/decisions/daily-route.md: take the next batch number; judge the files'
events against the events known before each file (:mod:`npr_pipeline.store.findings`) and
write every file's XPR_VAL and, when its events met a finding, its XPR_ERR (the XML only: the
display files are rendered on request, :func:`npr_pipeline.feedback.reports.display_files`);
append the events to the Delta tables under the batch; the caller then commits the ledger rows,
lopenr claims and the batch row in one DuckDB transaction (``write_records(..., batch=...)``).
A kill anywhere before that commit leaves only invisible rows and rewritable reports: the rerun
takes the files again under a new batch number and writes the same reports.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

import pyarrow as pa

from npr_pipeline.feedback.reports import Finding, SubmissionInfo, write_xpr_err, write_xpr_val
from npr_pipeline.home import Home
from npr_pipeline.intake.reasons import Reason, reason
from npr_pipeline.store.batches import begin_batch_reading
from npr_pipeline.store.events import append_events, stored, stored_specs
from npr_pipeline.store.findings import ARRIVAL, EventFinding, event_findings
from npr_pipeline.store.ledger import BatchCommit, LedgerRecord

EXAMPLES = 5
FIXES = {
    "duplicate_new": "Send changes to an existing record as M (replace) or T (supplement).",
    "unknown_key": "Send the record's N first (or check the id): the event takes effect then.",
    "after_cancel": "Send a new N (newer than the cancellation) to re-create the record.",
}


@dataclass
class DailyFile:
    """An accepted daily file waiting for its batch: its record, rows and report."""

    record: LedgerRecord
    tables: dict[str, pa.Table]
    info: SubmissionInfo
    reasons: list[Reason]  # the file's reasons so far (shared with its intake summary line)
    findings: list[Finding] = field(default_factory=list)  # a report's catalogue findings


def prepare_batch(home: Home, files: list[DailyFile]) -> BatchCommit:
    """Judge, report and append one batch of files; returns the batch row to commit."""
    number, committed = begin_batch_reading(home)
    rows = _rows(number, files)
    found: dict[str, list[EventFinding]] = {}
    for item in event_findings(home, rows, committed):
        found.setdefault(item.submission_id, []).append(item)
    for file in files:
        folder = home.feedback / file.record.submission_id
        write_xpr_val(folder, file.info, list(file.reasons))
        mine = found.get(file.record.submission_id, [])
        if mine or file.findings:
            found_here = [_finding(f) for f in mine] + file.findings
            write_xpr_err(folder, file.info, found_here, [])
        summary = _summary(mine) + report_summary(file.findings)
        file.reasons.extend(summary)
        file.record.reasons += [r.as_json() | {"severity": r.severity} for r in summary]
    versions = append_events(home, number, rows)
    return BatchCommit(number, len(files), versions)


def _rows(batch: int, files: list[DailyFile]) -> dict[str, pa.Table]:
    """Every file's rows per event table, stored schema plus the file's place in the batch.

    The files' tables are concatenated first and cast to the stored schema once per table:
    a cast per file and column was ~40 k Arrow calls per 1,500 files in the main process."""
    parts: dict[str, list[pa.Table]] = {}
    arrivals: dict[str, list[pa.Array]] = {}
    for arrival, file in enumerate(files, start=1):
        for name, table in file.tables.items():
            if table.num_rows:
                parts.setdefault(name, []).append(table)
                column = pa.repeat(pa.scalar(arrival, pa.int64()), table.num_rows)
                arrivals.setdefault(name, []).append(column)
    return {
        name: stored(
            stored_specs()[name], batch, pa.concat_tables(tables, promote_options="permissive")
        ).append_column(ARRIVAL, pa.chunked_array(arrivals[name], pa.int64()))
        for name, tables in parts.items()
    }


def _finding(item: EventFinding) -> Finding:
    return Finding(
        rule=item.code,
        severity="warning",
        message=reason(item.code, f"{item.status} {item.key} at {item.changed}.").message,
        fix=FIXES[item.code],
        episode_id=item.key,
        patient_nr=item.patient,
        line=item.line,
        value=f"{item.status} {item.key}",
    )


def report_summary(findings: list[Finding]) -> list[Reason]:
    """One warning per failed report check (the file is stored all the same), with examples."""
    summary = []
    for rule, count in sorted(Counter(f.rule for f in findings).items()):
        examples = [f"{f.episode_id} (line {f.line})" for f in findings if f.rule == rule]
        detail = f"{rule}: {count} record(s), e.g. {', '.join(examples[:EXAMPLES])}; see XPR_ERR."
        summary.append(reason("report_findings", detail, severity="warning"))
    return summary


def _summary(found: list[EventFinding]) -> list[Reason]:
    """One warning per finding code for the ledger and the summary, with examples."""
    counts = Counter(f.code for f in found)
    summary = []
    for code, count in sorted(counts.items()):
        examples = [f"{f.key} (line {f.line})" for f in found if f.code == code][:EXAMPLES]
        detail = f"{count} event(s), e.g. {', '.join(examples)}; see XPR_ERR."
        summary.append(reason(code, detail, severity="warning"))
    return summary
