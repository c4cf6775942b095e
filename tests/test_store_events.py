"""The daily route's event store: Delta event tables under committed batches (issue 13).

Real daily files through the real reader into real Delta tables; the rows read back through
two readers (pyarrow's dataset over the Delta table, and DuckDB) must agree, an uncommitted
batch must stay invisible, and a retried append must not write a batch twice.
"""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
import pyarrow.compute as pc
from deltalake import DeltaTable

from npr_pipeline.home import Home
from npr_pipeline.intake.run import intake_directory
from npr_pipeline.store.batches import (
    begin_batch,
    begin_batch_reading,
    committed_batch,
    committed_batches,
)
from npr_pipeline.store.events import (
    CHECKPOINT_EVERY,
    append_events,
    compact,
    events_dataset,
    reused_tables,
    table_path,
    uncompacted,
)
from tests.daily_events import commit_batch, ident, kontakt, read_events, write_file
from tests.intake_files import prepare_test_home


def _files(tmp_path: Path) -> list[Path]:
    return [
        write_file(tmp_path / "in", "kontakt", 1, [
            kontakt("K-1", "N", "2026-03-04T10:00:00", diagnoses=[(1, "M161"), (2, "E119")],
                    innDatoTid="2026-03-02T08:00:00"),
            kontakt("K-2", "N", "2026-03-04T11:00:00", procedures=[(1, "NFB40")]),
        ]),
        write_file(tmp_path / "in", "ident", 1, [ident("P-1", "N", "2026-03-04T00:00:00")]),
    ]  # fmt: skip


def test_events_land_in_delta_tables_and_both_readers_see_the_same_rows(tmp_path: Path) -> None:
    home = Home(root=tmp_path / "home").ensure()
    files = _files(tmp_path)
    assert committed_batch(home) == 0
    batch = commit_batch(home, files)
    assert (batch, committed_batch(home)) == (1, 1)
    contacts = table_path(home, "daily_contacts")
    assert contacts == home.lake / "daily" / "daily_contacts"
    assert table_path(home, "daily_identities") == home.vault / "daily" / "daily_identities"
    assert (contacts / "year=2026").is_dir()
    arrow = events_dataset(home, "daily_contact_diagnoses").to_table()
    assert arrow.column_names[:5] == ["batch", "submission_id", "unit", "year", "lopenr"]
    assert arrow.column_names[-1] == "line"
    expected = sorted((1, files[0].stem, "4201115", 2026, 1, "K-1", n, code)
                      for n, code in [(1, "M161"), (2, "E119")])  # fmt: skip
    columns = ("batch", "submission_id", "unit", "year", "lopenr", "kontaktID", "tilstNr",
               "kodeNr")  # fmt: skip
    assert sorted(zip(*(arrow.column(c).to_pylist() for c in columns), strict=True)) == expected
    con = duckdb.connect()
    con.register("diagnoses", events_dataset(home, "daily_contact_diagnoses"))
    rows = con.execute(f"SELECT {', '.join(columns)} FROM diagnoses ORDER BY ALL").fetchall()
    assert rows == expected
    # deltalake's own reader, by path: what Spark or Trino would open
    assert DeltaTable(contacts).to_pyarrow_table().num_rows == 2
    assert DeltaTable(contacts).transaction_version("npr-intake") == 1


def test_a_retried_append_skips_tables_that_hold_the_batch(tmp_path: Path) -> None:
    home = Home(root=tmp_path / "home").ensure()
    tables = read_events(_files(tmp_path)[0])
    batch = begin_batch(home)
    first = append_events(home, batch, tables)
    again = append_events(home, batch, tables)
    assert first == again
    assert events_dataset(home, "daily_contacts").to_table().num_rows == 2


def test_reused_handles_see_every_later_commit_their_own_and_another_writers(
    tmp_path: Path,
) -> None:
    """An intake opens each table once: later batches, a retry and another writer's commit
    must all be seen through the kept handle, as a fresh open would see them."""
    home = Home(root=tmp_path / "home").ensure()
    first, second = _files(tmp_path)[0], write_file(tmp_path / "in2", "kontakt", 2, [
        kontakt("K-3", "N", "2026-03-05T10:00:00", diagnoses=[(1, "J069")]),
    ])  # fmt: skip
    contacts = table_path(home, "daily_contacts")
    with reused_tables():
        one = commit_batch(home, [first])
        assert events_dataset(home, "daily_contacts").to_table().num_rows == 2
        two = commit_batch(home, [second])
        assert events_dataset(home, "daily_contacts").to_table().num_rows == 3
        versions = append_events(home, two, read_events(second))  # a retry: nothing written
        assert versions["daily_contacts"] == DeltaTable(contacts).version()
        outside = DeltaTable(contacts)  # another writer, not through the kept handle
        outside.optimize.compact()
        assert events_dataset(home, "daily_contacts").to_table().num_rows == 3
        assert len(events_dataset(home, "daily_contacts").files) == 1
        assert compact(home)["daily_contacts"] == 1
    rows = events_dataset(home, "daily_contacts").to_table()
    assert sorted(zip(rows["batch"].to_pylist(), rows["kontaktID"].to_pylist(), strict=True)) == [
        (one, "K-1"),
        (one, "K-2"),
        (two, "K-3"),
    ]
    assert DeltaTable(contacts).transaction_version("npr-intake") == two


def test_an_uncommitted_batch_is_invisible_and_its_number_never_reused(tmp_path: Path) -> None:
    """A kill between the Delta append and the ledger commit: rows stored, batch not committed."""
    home = Home(root=tmp_path / "home").ensure()
    files = _files(tmp_path)
    lost = begin_batch(home)
    append_events(home, lost, read_events(files[0]))
    assert committed_batch(home) == 0
    again = commit_batch(home, files)
    assert again == lost + 1
    assert committed_batches(home).column("batch").to_pylist() == [again]
    stored = events_dataset(home, "daily_contacts").to_table()
    assert sorted(set(stored.column("batch").to_pylist())) == [lost, again]
    visible = stored.filter(pc.field("batch").isin(committed_batches(home).column("batch")))
    assert visible.num_rows == 2
    # intake's one read: the next number and the committed ones, never the lost or its own
    number, committed = begin_batch_reading(home)
    assert (number, committed.column("batch").to_pylist()) == (again + 1, [again])


def test_compaction_merges_the_batches_files_and_keeps_every_row(tmp_path: Path) -> None:
    home = Home(root=tmp_path / "home").ensure()
    files = _files(tmp_path)
    for _ in range(3):  # the same rows three times: three batches, three files per table
        commit_batch(home, files[:1])
    contacts = table_path(home, "daily_contacts")
    before = (
        events_dataset(home, "daily_contacts")
        .to_table()
        .sort_by([("batch", "ascending"), ("kontaktID", "ascending")])
    )
    assert len(DeltaTable(contacts).file_uris()) == 3
    assert compact(home)["daily_contacts"] == 1
    after = (
        events_dataset(home, "daily_contacts")
        .to_table()
        .sort_by([("batch", "ascending"), ("kontaktID", "ascending")])
    )
    assert after.to_pylist() == before.to_pylist()
    assert sorted(set(after.column("batch").to_pylist())) == [1, 2, 3]
    assert DeltaTable(contacts).transaction_version("npr-intake") == 3


def test_a_long_run_of_appends_is_checkpointed_every_few_commits(tmp_path: Path) -> None:
    """Each open replays the log since the last checkpoint: a long intake (no compaction until
    its end) writes one every ``CHECKPOINT_EVERY`` commits of a table, and every row stays."""
    home = Home(root=tmp_path / "home").ensure()
    tables = read_events(_files(tmp_path)[0])
    for _ in range(CHECKPOINT_EVERY + 2):
        versions = append_events(home, begin_batch(home), tables)
    contacts = table_path(home, "daily_contacts")
    last = json.loads((contacts / "_delta_log" / "_last_checkpoint").read_text())
    assert (
        last["version"] == CHECKPOINT_EVERY and versions["daily_contacts"] == CHECKPOINT_EVERY + 1
    )
    rows = events_dataset(home, "daily_contacts").to_table()
    assert sorted(set(rows.column("batch").to_pylist())) == list(range(1, CHECKPOINT_EVERY + 3))
    assert DeltaTable(contacts).to_pyarrow_table().num_rows == 2 * (CHECKPOINT_EVERY + 2)


def test_an_intake_compacts_what_a_killed_intake_left(tmp_path: Path) -> None:
    """Daily batches committed and the intake killed before its compaction: the rerun, which
    commits no daily batch, still merges the files (before, they stayed until the next daily
    intake)."""
    home = prepare_test_home(Home(root=tmp_path / "home"))
    files = _files(tmp_path)
    assert not uncompacted(home)
    for _ in range(2):
        commit_batch(home, files[:1])
    contacts = table_path(home, "daily_contacts")
    assert uncompacted(home) and len(DeltaTable(contacts).file_uris()) == 2
    (tmp_path / "empty").mkdir()
    assert intake_directory(home, tmp_path / "empty").as_json()["submissions"] == []
    assert not uncompacted(home) and len(DeltaTable(contacts).file_uris()) == 1
