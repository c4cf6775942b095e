"""The content checks' files read as production and the warehouse read them: by each
delivery's marker.

A delivery whose marker counts no violations has no violations file (an empty table); one whose
marker counts some, or that was checked before markers counted them, has its file, and a
missing one is damage (``FileNotFoundError`` here, ``InputFileError`` in production). A
delivery's results rows are its ord's rows in the file its marker names (its batch's, or, for
a marker from before batch files, its own).
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pyarrow.compute as pc
import pyarrow.parquet as pq

from npr_pipeline.quality.sql_engine import VIOLATION_COLUMNS
from npr_pipeline.quality.submission import (
    BATCHES,
    MARKER,
    RESULTS,
    has_violations_file,
    results_file,
)


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


def markers(home_root: Path) -> dict[Path, dict]:
    """Every delivery's marker, by path."""
    return {
        path: json.loads(path.read_text(encoding="utf-8"))
        for path in sorted((home_root / "quality").glob(f"*/*/*{MARKER}"))
    }


def results_rows(home_root: Path) -> dict[Path, list[dict]]:
    """Per marker, its delivery's results rows from the file the marker names (which must
    exist: a marker never names a missing file)."""
    found = {}
    for path, marker in markers(home_root).items():
        table = pq.read_table(results_file(path, marker))
        ord_sid = path.name.removesuffix(MARKER)
        found[path] = table.filter(pc.equal(table["ord_sid"], ord_sid)).to_pylist()
    return found


def batch_files(home_root: Path) -> set[Path]:
    """The batch results files there are."""
    return set((home_root / "quality" / BATCHES).glob(f"*{RESULTS}"))


def as_per_delivery_results(home_root: Path) -> None:
    """Make a HOME what checks before batch files left: each delivery's results rows in its
    own file beside its marker, markers naming no file, no batch files."""
    for path, marker in markers(home_root).items():
        table = pq.read_table(results_file(path, marker))
        ord_sid = path.name.removesuffix(MARKER)
        own = table.filter(pc.equal(table["ord_sid"], ord_sid)).replace_schema_metadata()
        pq.write_table(own, path.with_name(ord_sid + RESULTS))
        del marker["results"]
        path.write_text(json.dumps(marker), encoding="utf-8")
    for path in batch_files(home_root):
        path.unlink()


def checked_files(home_root: Path) -> dict[str, object]:
    """Every delivery's files under ``quality/`` by path, Parquet as rows: a marker as what it
    says but its batch file's name (which depends on what else shared the batch), with its
    delivery's results rows; the batch files only so."""
    rows = results_rows(home_root)
    found: dict[str, object] = {}
    for path in sorted((home_root / "quality").glob("*/*/*.*")):
        key = str(path.relative_to(home_root))
        if path in rows:
            marker = json.loads(path.read_text(encoding="utf-8"))
            found[key] = ({k: v for k, v in marker.items() if k != "results"}, rows[path])
        else:
            found[key] = pq.read_table(path).to_pylist()
    return found
