"""Feedback to reporting units: the XPR_VAL and XPR_ERR reports (XML, HTML, CSV)."""

from npr_pipeline.feedback.reports import (
    MAX_FINDINGS,
    NAMESPACE,
    XSD_PATH,
    Finding,
    SubmissionInfo,
    read_report_summary,
    write_xpr_err,
    write_xpr_val,
)

__all__ = [
    "MAX_FINDINGS",
    "NAMESPACE",
    "XSD_PATH",
    "Finding",
    "SubmissionInfo",
    "read_report_summary",
    "write_xpr_err",
    "write_xpr_val",
]
