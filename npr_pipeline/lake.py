"""The Parquet lake: where each submission's tables live, and which submissions are current.

Files are per submission (``<table>/year=Y/unit=U/<submission_id>.parquet``), written once and
never changed; "current" is a choice made from the ledger, so replacing a unit's data is a new
file plus a different choice, never an edit, and any earlier state can be rebuilt.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from npr_pipeline.home import Home
from npr_pipeline.periods import Period
from npr_pipeline.store.ledger import current_submissions


def lake_file(home: Home, table: str, year: int, unit: str, submission_id: str) -> Path:
    """Where a submission's rows of one table live; identities live in the vault."""
    base = home.vault if table == "idents" else home.lake
    return base / table / f"year={year}" / f"unit={unit}" / f"{submission_id}.parquet"


def current_for_period(ledger: pd.DataFrame, period: Period) -> pd.DataFrame:
    """Per unit and message type: the current submission of the year and whether it covers.

    Current is the newest accepted production submission (by lopenr, then extraction date) of
    the unit, type and data year; it covers the period when its data reach the period's end.
    """
    columns = ["unit", "message_type", "submission_id", "lopenr", "period_to", "episodes"]
    # only the columns the choice and the answer read: at 65,000 units (~400,000 records a
    # year) sorting the whole ledger's twenty columns cost seconds (docs/benchmarks.md)
    needed = [*columns, "status", "extracted", "year"]
    current = current_submissions(ledger.loc[ledger["year"] == period.year, needed])
    if current.empty:  # typed, so that selecting rows by ``covers`` works on it too
        return pd.DataFrame(columns=columns).assign(covers=pd.Series(dtype=bool))
    current = current[columns].assign(covers=current["period_to"] >= period.end.isoformat())
    return current.sort_values(["unit", "message_type"]).reset_index(drop=True)


def parquet_source(paths: list[Path], union_by_name: bool = False) -> str:
    """A DuckDB ``read_parquet`` over explicit files.

    Hive partitioning is off: the ``unit=`` folders would otherwise turn the unit column into
    an integer (and drop leading zeros); the files carry their own typed columns.
    """
    listing = ", ".join("'" + str(p).replace("'", "''") + "'" for p in paths)
    options = ", union_by_name = true" if union_by_name else ""
    return f"read_parquet([{listing}], hive_partitioning = false{options})"
