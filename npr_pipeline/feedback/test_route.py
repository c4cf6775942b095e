"""The content answer (XPR_ERR) of a file that never enters production.

A file sent to the validation service (receiver HER 121017) or from a vendor's test
organisation number is answered exactly as a production file would be: its staged tables go
through the same content catalogue, but alone (no lake rows, no lopenr claim, no ide partner),
and are removed afterwards. Intake calls this when it commits such a file, after its XPR_VAL.
"""

from __future__ import annotations

import shutil
from dataclasses import replace

from npr_pipeline.home import Home
from npr_pipeline.intake.reader import ReadResult
from npr_pipeline.quality.submission import check_alone
from npr_pipeline.settings import load_settings
from npr_pipeline.store.ledger import LedgerRecord


def answer_test_file(home: Home, record: LedgerRecord, read: ReadResult) -> dict[str, int] | None:
    """Write the file's XPR_ERR if it got as far as the content checks; its error and warning
    counts (None when the schema or the gate stopped it: then XPR_VAL is its only answer)."""
    try:
        if not read.staged:
            return None
        unit_name = read.gate.unit["name"] if read.gate.unit else None
        outcome = check_alone(
            home.feedback / record.submission_id,
            replace(record, episodes=read.episodes, patients=read.patients),
            read.staged,
            unit_name,
            load_settings(home).synthetic_fnr_accepted,
        )
        return {"errors": outcome.errors, "warnings": outcome.warnings}
    finally:
        shutil.rmtree(home.staging / record.submission_id, ignore_errors=True)
