"""Each period's account of what it received: its window, its refusals and their reasons."""

from __future__ import annotations

import pandas as pd

from npr_pipeline.intake.receipts import period_receipts, receipt_summary
from npr_pipeline.periods import Period
from npr_pipeline.store.ledger import LEDGER_COLUMNS


def _ledger(*rows: dict[str, object]) -> pd.DataFrame:
    base = {column: None for column in LEDGER_COLUMNS} | {"size": 0, "episodes": 0, "patients": 0}
    return pd.DataFrame([base | row for row in rows], columns=list(LEDGER_COLUMNS))


LEDGER = _ledger(
    {"submission_id": "a", "file": "a.xml", "status": "accepted", "unit": "1", "size": 10,
     "period_to": "2026-02-28", "episodes": 5, "patients": 3, "reason_codes": ""},
    {"submission_id": "b", "file": "b.xml", "status": "accepted", "unit": "2", "size": 20,
     "period_to": "2026-03-31", "episodes": 7, "patients": 4, "reason_codes": "older_than_current"},
    {"submission_id": "c", "file": "c.xml", "status": "rejected", "unit": "2", "size": 30,
     "period_to": "2026-03-31", "reason_codes": "schema_error,schema_error,ide_mismatch"},
    {"submission_id": "d", "file": "d.xml", "status": "test", "unit": "3", "size": 40,
     "period_to": "2026-03-15"},
    {"submission_id": "e", "file": "e.xml", "status": "rejected", "size": 50, "period_to": None,
     "reason_codes": "not_xml"},
    {"submission_id": "f", "file": "f.xml", "status": "accepted", "unit": "1", "size": 60,
     "period_to": "2026-05-31", "episodes": 9, "patients": 5, "reason_codes": ""},
)  # fmt: skip


def test_a_month_holds_only_files_whose_data_end_in_it() -> None:
    assert period_receipts(LEDGER, Period.parse("2026-03"))["submission_id"].tolist() == [
        "b", "c", "d",
    ]  # fmt: skip
    assert period_receipts(LEDGER, Period.parse("2026-T1"))["submission_id"].tolist() == [
        "a", "b", "c", "d",
    ]  # fmt: skip
    assert period_receipts(LEDGER, Period.parse("2026-T2"))["submission_id"].tolist() == ["f"]


def test_a_file_without_a_period_belongs_to_no_partition() -> None:
    for key in ("2026-01", "2026-T1", "2026-T2", "2026-T3", "2026"):
        assert "e" not in period_receipts(LEDGER, Period.parse(key))["submission_id"].tolist()


def test_summary_counts_refusals_by_reason_and_only_accepted_episodes() -> None:
    summary = receipt_summary(period_receipts(LEDGER, Period.parse("2026-03")))
    assert {k: summary[k] for k in ("files", "accepted", "rejected", "test", "bytes")} == {
        "files": 3, "accepted": 1, "rejected": 1, "test": 1, "bytes": 90,
    }  # fmt: skip
    assert (summary["episodes"], summary["patients"], summary["units"]) == (7, 4, 1)
    assert summary["rejected_by_reason"] == {"ide_mismatch": 1, "schema_error": 1}
    assert summary["rejected_files"] == [
        {"file": "c.xml", "unit": "2", "reasons": "schema_error,schema_error,ide_mismatch"}
    ]
