"""The content checks' files read as production reads them: by each delivery's marker.

A delivery whose marker counts no violations has no violations file (an empty table); one whose
marker counts some, or that was checked before markers counted them, has its file, and a
missing one is damage (``FileNotFoundError`` here, ``InputFileError`` in production).
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from npr_pipeline.quality.sql_engine import VIOLATION_COLUMNS
from npr_pipeline.quality.submission import has_violations_file

MARKER = ".results.json"


def violations_files(home_root: Path) -> dict[Path, Path | None]:
    """Per delivery marker, its violations file, or None when the marker counts none (and
    then no file may be there: an earlier check's file would be stale)."""
    found: dict[Path, Path | None] = {}
    for marker in sorted((home_root / "quality").glob(f"*/*/*{MARKER}")):
        path = _violations_path(marker)
        if has_violations_file(json.loads(marker.read_text(encoding="utf-8"))):
            found[marker] = path
        else:
            assert not path.exists(), f"{path}: its marker counts no violations"
            found[marker] = None
    return found


def as_before_the_count(marker: Path) -> Path:
    """Make a delivery's files what checks before markers counted violations left: a marker
    without the count, and a violations file even when there are none (empty); its path."""
    found = json.loads(marker.read_text(encoding="utf-8"))
    path = _violations_path(marker)
    if found.pop("violations") == 0:
        pd.DataFrame(columns=VIOLATION_COLUMNS).to_parquet(path, index=False)
    marker.write_text(json.dumps(found), encoding="utf-8")
    return path


def all_violations(home_root: Path) -> pd.DataFrame:
    """Every checked delivery's violation rows, one frame (the columns even when none)."""
    frames = [pd.read_parquet(p) for p in violations_files(home_root).values() if p is not None]
    if not frames:
        return pd.DataFrame(columns=VIOLATION_COLUMNS)
    return pd.concat(frames, ignore_index=True)


def _violations_path(marker: Path) -> Path:
    return marker.with_name(marker.name.removesuffix(MARKER) + ".violations.parquet")
