"""The warehouse's ``quality_results`` follow the deliveries' markers, incrementally.

Intake hands the rows it has just written to the warehouse instead of reloading every results
file of the year; deliveries whose marker changed without a sync (a run killed after writing
it) are read back on the next one from the file the marker names. Either way the warehouse
must hold exactly the rows the markers name, each delivery's once.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pyarrow.compute as pc
import pyarrow.parquet as pq

from npr_pipeline.home import Home
from npr_pipeline.intake.run import intake_directory
from npr_pipeline.quality.submission import MARKER, RESULTS, batches_folder, results_file
from npr_pipeline.registry import import_registry
from npr_pipeline.settings import TEST, record_environment
from npr_pipeline.store.ledger import load_ledger
from npr_pipeline.warehouse import reader, sync_intake
from tests.quality_files import markers, results_rows

COLUMNS = "ord_sid, submission_id, check_id, status, unexpected_count, element_count"


def _files_rows(home: Home) -> list[tuple]:
    """Every delivery's results rows, from the file its marker names."""
    names = [c.strip() for c in COLUMNS.split(",")]
    rows = [tuple(r[c] for c in names) for found in results_rows(home.root).values() for r in found]
    return sorted(rows)


def _warehouse_rows(home: Home) -> list[tuple]:
    with reader(home) as con:
        return con.execute(f"SELECT {COLUMNS} FROM quality_results ORDER BY ALL").fetchall()


def _month_inbox(synth_out: Path, inbox: Path, month: str) -> Path:
    inbox.mkdir()
    for path in sorted((synth_out / "inbox").glob(f"*_{month}_*.xml")):
        shutil.copyfile(path, inbox / path.name)
    return inbox


def test_warehouse_holds_the_results_files_rows_across_intakes_and_a_lost_sync(
    small_year: Path, tmp_path: Path
) -> None:
    home = Home(root=tmp_path / "home").ensure()
    record_environment(home, TEST, "tests")
    import_registry(home, small_year / "registry.csv")

    intake_directory(home, _month_inbox(small_year, tmp_path / "jan", "2026-01"))
    january = _warehouse_rows(home)
    assert january and january == _files_rows(home)

    intake_directory(home, _month_inbox(small_year, tmp_path / "feb", "2026-02"))
    both = _warehouse_rows(home)
    assert len(both) > len(january)
    assert both == _files_rows(home)

    # a run killed after one delivery's new batch file and its marker, before its sync and the
    # sweep: its old rows are still in the batch file its marker named before
    marker_path, marker = next(iter(markers(home.root).items()))
    table = pq.read_table(results_file(marker_path, marker))
    table = table.set_column(
        table.schema.get_field_index("status"),
        "status",
        pc.if_else(pc.equal(table["status"], "pass"), "warn", table["status"]),
    )
    moved = "moved" + RESULTS
    pq.write_table(table, batches_folder(home) / moved)
    marker_path.write_text(json.dumps(marker | {"results": moved}), encoding="utf-8")
    sync_intake(home, load_ledger(home))
    assert _warehouse_rows(home) == _files_rows(home)
    ord_sid = marker_path.name.removesuffix(MARKER)
    own = [row for row in _warehouse_rows(home) if row[0] == ord_sid]
    assert own and {row[3] for row in own} == {"warn"}  # its new rows only, once
    assert len(own) == len(results_rows(home.root)[marker_path])
