"""The warehouse's ``quality_results`` follow the per-delivery results files, incrementally.

Intake hands the rows it has just written to the warehouse instead of reloading every results
file of the year; files that changed without a sync (a run killed after writing them) are read
back on the next one. Either way the warehouse must hold exactly the files' rows.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import duckdb
import pyarrow.compute as pc
import pyarrow.parquet as pq

from npr_pipeline.home import Home
from npr_pipeline.intake.run import intake_directory
from npr_pipeline.registry import import_registry
from npr_pipeline.settings import TEST, record_environment
from npr_pipeline.store.ledger import load_ledger
from npr_pipeline.warehouse import reader, sync_intake

COLUMNS = "ord_sid, submission_id, check_id, status, unexpected_count, element_count"


def _files_rows(home: Home) -> list[tuple]:
    pattern = str(home.root / "quality" / "*" / "*" / "*.results.parquet")
    con = duckdb.connect()
    try:
        return con.execute(
            f"SELECT {COLUMNS} FROM read_parquet('{pattern}', union_by_name = true, "
            "hive_partitioning = false) ORDER BY ALL"
        ).fetchall()
    finally:
        con.close()


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

    # a run killed after rewriting one delivery's results file, before its sync
    changed = sorted((home.root / "quality").glob("*/*/*.results.parquet"))[0]
    table = pq.read_table(changed)
    table = table.set_column(
        table.schema.get_field_index("status"),
        "status",
        pc.if_else(pc.equal(table["status"], "pass"), "warn", table["status"]),
    )
    pq.write_table(table, changed)
    sync_intake(home, load_ledger(home))
    assert _warehouse_rows(home) == _files_rows(home)
    assert any(row[3] == "warn" for row in _warehouse_rows(home))
