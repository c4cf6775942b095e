"""What a reporting period received: the submissions whose data end inside its window.

Receiving is one step for the whole inbox, because files of several periods arrive together
and a file that cannot be read has no period at all. This module accounts for the ledger per
period instead, so the Dagster lake asset is partitioned by period (never by unit) and each
partition shows what came in for it: files, accepted, rejected by reason, bytes and episodes.
"""

from __future__ import annotations

from collections import Counter

import pandas as pd

from npr_pipeline.intake.reasons import Status
from npr_pipeline.periods import Period


def period_receipts(ledger: pd.DataFrame, period: Period) -> pd.DataFrame:
    """Ledger rows whose data run to a day inside the period's window (its own months)."""
    first, last = period.window
    ends = pd.to_datetime(ledger["period_to"], errors="coerce").dt.date
    inside = ends.notna() & (ends >= first) & (ends <= last)
    return ledger[inside].sort_values("submission_id").reset_index(drop=True)


def receipt_summary(receipts: pd.DataFrame) -> dict[str, object]:
    """Counts a data engineer reads on the partition: what arrived, what was refused and why."""
    status = receipts["status"]
    accepted = receipts[status == Status.ACCEPTED]
    rejected = receipts[status == Status.REJECTED]
    reasons = Counter(  # files per reason: a file with ten schema errors is one refused file
        code for codes in rejected["reason_codes"] for code in set(str(codes).split(",")) if code
    )
    return {
        "files": len(receipts),
        "accepted": len(accepted),
        "rejected": len(rejected),
        "test": int((status == Status.TEST).sum()),
        "bytes": int(receipts["size"].sum()),
        "episodes": int(accepted["episodes"].sum()),
        "patients": int(accepted["patients"].sum()),
        "units": int(accepted["unit"].nunique()),
        "rejected_by_reason": dict(sorted(reasons.items())),
        "rejected_files": [
            {"file": row.file, "unit": row.unit, "reasons": row.reason_codes}
            for row in rejected.itertuples(index=False)
        ],
    }
