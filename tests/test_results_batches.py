"""The content checks' results: one file per batch, each marker naming its batch's file.

A delivery checked again (its ide arrived, another catalogue) points its marker at a new batch
file; the warehouse follows the markers, so it holds the delivery's new rows once, and a batch
file no marker names any more is removed after the markers. A run killed anywhere (between a
batch file and its markers, between the markers and the removal) leaves a state where every
marker names a file that exists, and the next run leaves what one clean run leaves. A HOME
checked before batch files (a results file per delivery) still syncs, and moves to batch files
as its deliveries are checked again.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from npr_pipeline.home import Home
from npr_pipeline.intake.run import _LedgerState, intake_directory
from npr_pipeline.quality.submission import (
    MARKER,
    RESULTS,
    SWEEP,
    batches_folder,
    check_deliveries,
    not_yet_checked,
    results_file,
)
from npr_pipeline.registry import import_registry
from npr_pipeline.settings import TEST, record_environment
from npr_pipeline.store.ledger import load_ledger, load_records
from npr_pipeline.warehouse import reader, replace_table, sync_intake, writer
from tests.intake_files import home_copy
from tests.quality_files import (
    as_per_delivery_results,
    batch_files,
    checked_files,
    markers,
    results_rows,
)
from tests.soak import KILL_TEST

ROOT = Path(__file__).resolve().parents[1]


def _warehouse_rows(home: Home) -> dict[str, list[tuple]]:
    """The warehouse's results rows per ord submission id."""
    with reader(home) as con:
        rows = con.execute(
            "SELECT ord_sid, submission_id, check_id, status, unexpected_count, element_count "
            "FROM quality_results ORDER BY ALL"
        ).fetchall()
    found: dict[str, list[tuple]] = {}
    for row in rows:
        found.setdefault(row[0], []).append(row[1:])
    return found


def _marked_rows(home: Home) -> dict[str, list[tuple]]:
    """Every delivery's rows in the file its marker names, as :func:`_warehouse_rows`."""
    columns = ("submission_id", "check_id", "status", "unexpected_count", "element_count")
    return {
        path.name.removesuffix(MARKER): sorted(tuple(r[c] for c in columns) for r in rows)
        for path, rows in results_rows(home.root).items()
    }


def _unnamed(home: Home) -> set[Path]:
    """Results files no marker names (garbage)."""
    named = {results_file(path, marker) for path, marker in markers(home.root).items()}
    own = set((home.root / "quality").glob(f"*/*/*{RESULTS}"))  # an older HOME's
    return (batch_files(home.root) | own) - named


def _month_files(source: Path, inbox: Path, pattern: str) -> Path:
    inbox.mkdir()
    for path in sorted((source / "inbox").glob(pattern)):
        shutil.copyfile(path, inbox / path.name)
    return inbox


def test_a_delivery_checked_again_moves_to_a_new_batch_file_and_counts_once(
    small_year: Path, tmp_path: Path
) -> None:
    """January's ords first (checked alone), then half of their ides, then the rest: each
    delivery's marker moves to the batch file of its new check, the warehouse holds its new
    rows once, and the first batch file goes when its last marker has moved."""
    home = Home(root=tmp_path / "home").ensure()
    record_environment(home, TEST, "tests")
    import_registry(home, small_year / "registry.csv")
    intake_directory(home, _month_files(small_year, tmp_path / "ords", "*_2026-01_ord.xml"))
    (first,) = batch_files(home.root)
    assert all(m["results"] == first.name for m in markers(home.root).values())
    assert _warehouse_rows(home) == _marked_rows(home)

    ides = sorted((small_year / "inbox").glob("*_2026-01_ide.xml"))
    half = tmp_path / "half"
    half.mkdir()
    for path in ides[: len(ides) // 2]:
        shutil.copyfile(path, half / path.name)
    intake_directory(home, half)
    moved = {p for p, m in markers(home.root).items() if m["ide_sid"] is not None}
    assert 0 < len(moved) < len(markers(home.root))
    assert first.exists()  # the other half's markers still name it
    assert {markers(home.root)[p]["results"] for p in moved} != {first.name}
    assert _warehouse_rows(home) == _marked_rows(home)

    rest = tmp_path / "rest"
    rest.mkdir()
    for path in ides[len(ides) // 2 :]:
        shutil.copyfile(path, rest / path.name)
    intake_directory(home, rest)
    assert not first.exists()  # no marker names it any more
    assert all(m["ide_sid"] is not None for m in markers(home.root).values())
    counted = _warehouse_rows(home)
    assert counted == _marked_rows(home)
    for ord_sid, rows in counted.items():  # the ord's and the ide's checks, each once
        assert len(rows) == len(set(rows)), ord_sid
        assert len({r[0] for r in rows}) == 2, ord_sid
    assert not _unnamed(home) and not (batches_folder(home) / SWEEP).exists()


@pytest.fixture(scope="module")
def received(received_defect_year: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The defect year through intake, every delivery then due again (its marker's catalogue
    another): the next check moves every delivery to new batch files."""
    home = home_copy(received_defect_year, tmp_path_factory.mktemp("batches") / "home")
    for path, marker in markers(home.root).items():
        path.write_text(json.dumps(marker | {"catalogue": "older"}), encoding="utf-8")
    return home.root


CHECK = """
import os, signal, sys
from pathlib import Path
from npr_pipeline.home import Home
from npr_pipeline.intake.run import _LedgerState
from npr_pipeline.quality import submission
from npr_pipeline.store.ledger import load_ledger, load_records
from npr_pipeline.warehouse import sync_intake

home, point = Home(root=Path(sys.argv[1])), sys.argv[2]
submission.BATCH, submission.WORKERS = 3, 1
calls = []

def dies(real, at):
    def wrapped(*args, **kwargs):
        calls.append(1)
        if len(calls) == at:
            os.kill(os.getpid(), signal.SIGKILL)
        return real(*args, **kwargs)
    return wrapped

if point.startswith("delivery-"):  # at a delivery's files: its batch file written, no marker
    submission._write_delivery = dies(submission._write_delivery, int(point[9:]))
if point == "sweep":  # every marker written, nothing removed
    submission._Sweep.after = dies(submission._Sweep.after, 1)
deliveries = _LedgerState(load_records(home)).deliveries()
checked = submission.check_deliveries(home, submission.not_yet_checked(home, deliveries), True)
sync_intake(home, load_ledger(home), checked.results)
"""


def _check(home: Home, point: str) -> int:
    """The content checks (batches of 3) and the warehouse's sync in a process of their own,
    killed (SIGKILL) at ``point`` (``delivery-N``: before the Nth delivery's files, ``sweep``:
    before the removal) or not (``none``); its exit code."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-c", CHECK, str(home.root), point], env=env).returncode


def _state(home: Home) -> dict[str, object]:
    """What the checks leave: every delivery's files (a marker with its results rows), the batch
    files by name (Parquet by rows), XPR_ERR, and the warehouse's results rows."""
    found = checked_files(home.root)
    for path in sorted(batch_files(home.root)):
        found[str(path.relative_to(home.root))] = pq.read_table(path).to_pylist()
    for path in sorted(home.feedback.glob("*/XPR_ERR.*")):
        found[str(path.relative_to(home.root))] = path.read_bytes()
    found["warehouse"] = _warehouse_rows(home)
    return found


@pytest.fixture(scope="module")
def clean(received: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    """What one clean run leaves."""
    home = home_copy(received, tmp_path_factory.mktemp("clean") / "home")
    assert _check(home, "none") == 0
    assert not _unnamed(home)
    assert not (batches_folder(home) / SWEEP).exists()
    return _state(home)


KILLS = ["delivery-1", "sweep", *(f"delivery-{n}" for n in (2, 4, 5, 9, 13))]
"""Where a run dies: before its first marker (the first batch file written), between two
batches' markers, inside a batch's, before the removal."""


@pytest.mark.soak
@KILL_TEST
@pytest.mark.parametrize("point", KILLS)
def test_a_kill_leaves_no_marker_naming_a_missing_file_and_the_rerun_equals_a_clean_run(
    received: Path, clean: dict[str, object], tmp_path: Path, point: str
) -> None:
    home = home_copy(received, tmp_path / "home")
    before = batch_files(home.root)
    assert _check(home, point) == -signal.SIGKILL
    results_rows(home.root)  # every marker names a file there is
    assert (batches_folder(home) / SWEEP).exists()  # the journal of what may need removing
    if point == "sweep":  # every marker moved: the old batch files are garbage
        assert before and before <= _unnamed(home)
    elif point == "delivery-1":  # the first batch's file is written and no marker names it
        assert _unnamed(home) - before
    else:  # some markers name the run's files, the others still the files before
        named = {results_file(path, marker) for path, marker in markers(home.root).items()}
        assert named & before and named - before
    assert _check(home, "none") == 0
    assert not _unnamed(home)
    assert not (batches_folder(home) / SWEEP).exists()
    after = _state(home)
    if point in ("delivery-1", "sweep"):  # the rerun's batches are the clean run's
        assert after == clean
    else:  # the rerun batches the deliveries left: its files' names are not the clean run's
        assert _by_marker(after) == _by_marker(clean)


def _by_marker(state: dict[str, object]) -> dict[str, object]:
    """A state without its batch files: their rows as each marker's."""
    return {k: v for k, v in state.items() if "/batches/" not in k}


def test_a_home_with_results_files_per_delivery_still_syncs_and_moves_on(
    received_defect_year: Path, tmp_path: Path
) -> None:
    """An older HOME (a results file per delivery, markers naming none, the warehouse's
    bookkeeping by those files' times) syncs by its markers; deliveries checked again move to
    a batch file, their own files are removed, and each counts once."""
    home = home_copy(received_defect_year, tmp_path / "home")
    as_per_delivery_results(home.root)
    own = sorted((home.root / "quality").glob(f"*/*/*{RESULTS}"))
    assert own and not batch_files(home.root)
    # one delivery's file changed after the last sync (a run killed before it) ...
    table = pq.read_table(own[0])
    status = table.schema.get_field_index("status")
    pq.write_table(
        table.set_column(status, "status", pc.if_else(True, "warn", table["status"])), own[0]
    )
    with writer(home) as con:  # ... and what a sync before batch files kept: the files' times
        stamps = pd.DataFrame(
            {
                "ord_sid": [p.name.removesuffix(RESULTS) for p in own],
                "mtime_ns": [0] + [p.stat().st_mtime_ns for p in own[1:]],
            }
        )
        replace_table(con, "quality_results_files", stamps)
    sync_intake(home, load_ledger(home))
    counted = _warehouse_rows(home)
    assert counted == _marked_rows(home)
    assert {row[2] for row in counted[own[0].name.removesuffix(RESULTS)]} == {"warn"}

    due = list(markers(home.root).items())[::2]
    for path, marker in due:
        path.write_text(json.dumps(marker | {"catalogue": "older"}), encoding="utf-8")
    pending = not_yet_checked(home, _LedgerState(load_records(home)).deliveries())
    assert len(pending.deliveries) == len(due)
    checked = check_deliveries(home, pending, allow_synthetic_fnr=True)
    sync_intake(home, load_ledger(home), checked.results)
    for path, _ in due:
        assert "results" in markers(home.root)[path]
        assert not path.with_name(path.name.removesuffix(MARKER) + RESULTS).exists()
    assert len(list((home.root / "quality").glob(f"*/*/*{RESULTS}"))) == len(own) - len(due)
    assert not _unnamed(home)
    assert _warehouse_rows(home) == _marked_rows(home)
