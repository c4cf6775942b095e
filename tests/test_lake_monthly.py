"""The monthly lake in Delta: one part file per submission and table, committed per intake
batch, read only through committed batches; kills anywhere end, after a rerun, in the clean
run's state; maintenance keeps recent versions readable."""

from __future__ import annotations

import hashlib
import json
import signal
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest
from deltalake import DeltaTable

import npr_pipeline.intake.run as intake_run
from npr_pipeline.home import Home
from npr_pipeline.intake.reasons import Status
from npr_pipeline.store import state
from npr_pipeline.store.batches import committed_batch
from npr_pipeline.store.events import APP_ID
from npr_pipeline.store.lake import (
    BATCH,
    CHUNK,
    TABLES,
    maintain,
    part_files,
    part_schema,
    rows_source,
    sweep,
    table_path,
)
from npr_pipeline.store.ledger import _prepare, load_records
from tests.intake_files import (
    fill_inbox,
    make_year,
    prepare_test_home,
    run_intake,
    table_contents,
    tables_of,
)
from tests.soak import KILL_TEST

TIMEOUT = 120


@pytest.fixture(scope="module")
def year(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two units' January and February: 8 files (ord and ide), one intake batch."""
    out = tmp_path_factory.mktemp("synth-lake")
    make_year(out, units=2, through=2, episodes=4.0)
    return out


@pytest.fixture(scope="module")
def clean(year: Path, tmp_path_factory: pytest.TempPathFactory) -> Home:
    home = _home(tmp_path_factory.mktemp("clean") / "home", year)
    summary = run_intake(home, year / "inbox", timeout=TIMEOUT)
    assert {s.status for s in summary.submissions} == {Status.ACCEPTED}
    return home


def _home(root: Path, year: Path) -> Home:
    return prepare_test_home(Home(root=root), year / "registry.csv")


def _state(home: Home) -> tuple:
    records = sorted((r.submission_id, r.status, r.lopenr) for r in load_records(home))
    return records, table_contents(home)


def test_a_chunk_of_small_files_is_one_part_file_per_table_in_its_batch(clean: Home) -> None:
    """The eight small files are one chunk: each table's rows sit in one part file
    ``batch=N/chunk-<first member>.parquet``, its members (the ords, or the ides) in
    ``lake_parts``, the batch as the app transaction and the keys' range in the log."""
    records = load_records(clean)
    batch = committed_batch(clean)
    for table in TABLES:
        kind = "NPR_IDE" if table == "idents" else "NPR_ORD"
        members = sorted(r.submission_id for r in records if r.message_type == kind)
        delta = DeltaTable(table_path(clean, table))
        assert delta.transaction_version(APP_ID) == batch
        assert delta.metadata().partition_columns == [BATCH]
        files = part_files(clean, table)
        assert sorted(files) == members
        (path,) = set(files.values())
        assert path.parent == table_path(clean, table) / f"batch={batch}"
        assert path.name.startswith(CHUNK)
        held = set(pq.read_table(path).column("submission_id").to_pylist())
        assert held <= set(members)
        if table == "episodes":  # every ord with episodes has its rows in the chunk's file
            assert held == {r.submission_id for r in records if r.episodes} != set()
        adds = pa.table(delta.get_add_actions(flatten=True)).to_pylist()
        assert [(a["min.submission_id"], a["max.submission_id"]) for a in adds] == [
            (members[0], members[-1])
        ]
    assert table_path(clean, "idents").is_relative_to(clean.vault)
    assert not any(clean.lake.rglob("idents"))


def test_a_part_file_reads_back_typed_and_prunable_by_its_keys(clean: Home) -> None:
    """The lean write (no Arrow schema in the footer, statistics on the keys only) still reads
    back as the lake's types, and a reader can skip row groups outside its submissions."""
    checked = 0
    for table in TABLES:
        for path in set(part_files(clean, table).values()):
            assert pq.read_schema(path) == part_schema(table)
            group = pq.ParquetFile(path).metadata.row_group(0)
            if not group.num_rows:  # an empty part has no values to keep statistics of
                continue
            stats = {
                group.column(i).path_in_schema: group.column(i).statistics
                for i in range(group.num_columns)
            }
            held = pq.read_table(path).column("submission_id").to_pylist()
            assert (stats["submission_id"].min, stats["submission_id"].max) == (
                min(held),
                max(held),
            )
            assert {c for c, found in stats.items() if found is not None} == {
                "submission_id",
                "unit",
                "year",
            }
            checked += 1
    assert checked  # some table of some submission has rows


def test_a_second_reader_sees_the_same_rows(clean: Home) -> None:
    """Delta's own pyarrow dataset (what Spark or Trino would read: the log's files) and the
    part files DuckDB reads give the same rows."""
    for table in ("episodes", "idents"):
        delta = DeltaTable(table_path(clean, table)).to_pyarrow_dataset()
        theirs = delta.to_table(filter=ds.field(BATCH) <= committed_batch(clean))
        ours = duckdb.sql(f"SELECT * FROM {rows_source(part_files(clean, table))}")
        key = [("submission_id", "ascending"), ("line", "ascending")]
        assert (
            theirs.drop_columns([BATCH]).sort_by(key).to_pylist()
            == ours.to_arrow_table().sort_by(key).to_pylist()
        )


# a kill -9 of intake after the monthly batch's Delta commits, before its ledger commit; after
# the worker wrote the chunk's part files, before the publish; (soak) after the n-th part
# file moved into its batch folder, before any Delta commit; or after every commit, before
# the lake's maintenance
_KILL = """
import os, signal, sys
from pathlib import Path
import npr_pipeline.intake.run as run
import npr_pipeline.store.lake as lake
import npr_pipeline.intake.run as intake_run
from npr_pipeline.home import Home
point = sys.argv[3]
if point == "ledger":
    real_publish = lake.publish
    def published_then_dying(*args):
        real_publish(*args)
        os.kill(os.getpid(), signal.SIGKILL)
    lake.publish = published_then_dying
elif point in ("staged", "maintain"):
    def dying(*args):
        os.kill(os.getpid(), signal.SIGKILL)
    setattr(lake, "publish" if point == "staged" else "maintain", dying)
else:
    real_add, moved = lake._add, []
    def dying_add(home, batch, parts):
        if len(moved) == int(point):
            os.kill(os.getpid(), signal.SIGKILL)
        moved.append(parts)
        return real_add(home, batch, parts)
    lake._add = dying_add
run.intake_directory(Home(root=Path(sys.argv[1])), Path(sys.argv[2]), workers=1)
"""
# the numbers: the n-th part added; small files share chunks, so the year has few parts
KILL_POINTS = ["ledger", "staged", "0", "1", "2", "4"]


@pytest.mark.soak
@KILL_TEST
@pytest.mark.parametrize("point", KILL_POINTS)
def test_a_kill_while_publishing_then_rerun_equals_a_clean_run(
    year: Path, clean: Home, tmp_path: Path, point: str
) -> None:
    killed = _home(tmp_path / "home", year)
    died = subprocess.run(
        [sys.executable, "-c", _KILL, str(killed.root), str(year / "inbox"), point],
        cwd=Path(__file__).resolve().parents[1],
        timeout=TIMEOUT,
    )
    assert died.returncode == -signal.SIGKILL
    assert (committed_batch(killed), load_records(killed)) == (0, [])
    assert table_contents(killed) == {}  # stored maybe, visible never
    if point == "ledger":  # the batch is in the log, under a number never committed
        assert DeltaTable(table_path(killed, "episodes")).transaction_version(APP_ID) == 1
    if point == "staged":  # the chunk's parts were written, nothing reached the lake
        assert [p.name for p in killed.staging.iterdir()] == [f"{CHUNK}{_first(year)}"]
        assert not table_path(killed, "episodes").exists()
    run_intake(killed, year / "inbox", timeout=TIMEOUT)
    assert committed_batch(killed) == 2
    assert _state(killed) == _state(clean)
    for path in killed.root.glob("*/monthly/*/batch=1/*"):  # in the log (never read), or swept
        assert str(path) in DeltaTable(path.parents[1]).file_uris()
    assert not any(killed.staging.iterdir())


@pytest.mark.soak
@KILL_TEST
def test_a_kill_before_maintenance_leaves_it_to_the_rerun(
    year: Path, clean: Home, tmp_path: Path
) -> None:
    """kill -9 after the last commit, before the lake's maintenance: the rerun finds every
    file a duplicate and commits nothing to the lake, yet checkpoints and vacuums every table
    as one clean run does (found by the kill -9 campaign of session 18)."""
    killed = _home(tmp_path / "home", year)
    died = subprocess.run(
        [sys.executable, "-c", _KILL, str(killed.root), str(year / "inbox"), "maintain"],
        cwd=Path(__file__).resolve().parents[1],
        timeout=TIMEOUT,
    )
    assert died.returncode == -signal.SIGKILL
    assert len(load_records(killed)) == len(load_records(clean))
    last = [table_path(killed, t) / "_delta_log" / "_last_checkpoint" for t in TABLES]
    assert not any(path.exists() for path in last)
    summary = run_intake(killed, year / "inbox", timeout=TIMEOUT)
    assert {s.status for s in summary.submissions} == {Status.DUPLICATE}
    for path in last:
        assert json.loads(path.read_text())["version"] == DeltaTable(path.parents[1]).version()
    with state.reader(killed, _prepare) as con:
        vacuumed = con.execute("SELECT count(*) FROM meta WHERE key = 'monthly_lake_vacuumed'")
        assert vacuumed.fetchall() == [(1,)]
    assert _state(killed) == _state(clean)


def test_the_sweep_removes_part_files_outside_the_log_only(clean: Home, tmp_path: Path) -> None:
    """A file a killed intake moved into an uncommitted batch's folder goes; committed files and
    files the log holds stay."""
    root = table_path(clean, "episodes")
    stray = root / "batch=99" / "stray.parquet"
    stray.parent.mkdir()
    committed = next(iter(part_files(clean, "episodes").values()))
    pq.write_table(pq.read_table(committed), stray)
    assert sweep(clean) == 1
    assert not stray.parent.exists() and committed.is_file()
    assert sweep(clean) == 0


def test_maintenance_checkpoints_and_vacuums_once_a_day(clean: Home) -> None:
    """After an intake: a checkpoint for each table written to, and a vacuum (recorded) that
    keeps recent versions readable; a second maintenance the same day vacuums nothing."""
    last = table_path(clean, "episodes") / "_delta_log" / "_last_checkpoint"
    assert json.loads(last.read_text())["version"] == DeltaTable(last.parents[1]).version()
    with state.reader(clean, _prepare) as con:
        (value,) = con.execute(
            "SELECT value FROM meta WHERE key = 'monthly_lake_vacuumed'"
        ).fetchall()[0]
    assert json.loads(value) == {"day": datetime.now(UTC).date().isoformat(), "deleted": 0}
    before = table_contents(clean)
    maintain(clean, [], today=datetime.now(UTC))
    assert table_contents(clean) == before
    assert DeltaTable(table_path(clean, "episodes"), version=0).to_pyarrow_table().num_rows > 0


def _first(year: Path) -> str:
    """The submission id of the inbox's first file (the id is the content's digest)."""
    first = sorted((year / "inbox").iterdir())[0]
    return hashlib.sha256(first.read_bytes()).hexdigest()[:16]


def test_chunked_rows_equal_one_file_at_a_time(
    year: Path, clean: Home, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every submission's rows in the lake, row for row and typed, are the same whether its
    file was read in a chunk with others (``clean``) or alone, as its own parts."""
    monkeypatch.setattr(intake_run, "CHUNK_FILES", 1)
    alone = _home(tmp_path / "home", year)
    run_intake(alone, year / "inbox", workers=1, timeout=TIMEOUT)
    assert not any(p.name.startswith(CHUNK) for p in alone.lake.rglob("*.parquet"))
    ours, theirs = table_contents(clean), table_contents(alone)
    assert ours.keys() == theirs.keys()
    for key, rows in ours.items():
        assert rows.schema == theirs[key].schema, key
        assert rows.to_pylist() == theirs[key].to_pylist(), key


def test_many_batches_in_one_run_equal_one_batch(
    year: Path, clean: Home, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A batch per file (eight in one run, the tables' handles kept from one batch to the
    next): the same rows as one batch, one commit per batch in each table's log, each naming
    its batch's file, and the ledger's last batch the tables' last app transaction."""
    monkeypatch.setattr(intake_run, "CHUNK_FILES", 1)
    monkeypatch.setattr(intake_run, "COMMIT_FILES", 1)
    many = _home(tmp_path / "home", year)
    run_intake(many, year / "inbox", workers=1, timeout=TIMEOUT)
    ours, theirs = table_contents(clean), table_contents(many)
    assert ours.keys() == theirs.keys()
    for key, rows in ours.items():
        assert rows.to_pylist() == theirs[key].to_pylist(), key
    last = committed_batch(many)
    assert last == 8
    for table in ("episodes", "idents"):
        delta = DeltaTable(table_path(many, table))
        assert delta.version() == 3  # four files of each message type: four batches
        assert delta.transaction_version(APP_ID) in (last - 1, last)
        on_disk = set(table_path(many, table).glob(f"{BATCH}=*/*.parquet"))
        assert {Path(p) for p in delta.file_uris()} == on_disk and len(on_disk) == 4


def test_a_file_refused_at_its_commit_in_the_middle_of_a_chunk_never_reaches_the_lake(
    year: Path, clean: Home, tmp_path: Path
) -> None:
    """A second copy of an ord (another byte, the same lopenr) is read into the chunk by the
    worker, then refused by the main process (lopenr_reused): the publish rewrites the chunk's
    parts without its rows; every other file's rows are the clean run's."""
    files = sorted((year / "inbox").iterdir())
    ords = [f for f in files if f.name.endswith("2026-01_ord.xml")]
    original = max(ords, key=lambda f: f.stat().st_size)  # the unit with episodes
    again = f"{original.stem}_again.xml"
    inbox = fill_inbox(tmp_path / "inbox", files, **{again: original.read_bytes() + b"<!---->"})
    assert files[0].name < again < files[-1].name  # in the middle of the one chunk
    home = _home(tmp_path / "home", year)
    by_file = {s.file: s for s in run_intake(home, inbox, workers=1, timeout=TIMEOUT).submissions}
    refused = by_file.pop(again)
    assert refused.status == Status.REJECTED
    assert [r.code for r in refused.reasons if r.severity == "error"] == ["lopenr_reused"]
    assert {s.status for s in by_file.values()} == {Status.ACCEPTED}
    assert tables_of(home, refused.submission_id) == []
    assert table_contents(home) == table_contents(clean)
    with state.reader(home, _prepare) as con:
        listed = con.execute("SELECT DISTINCT submission_id FROM lake_parts").fetchall()
    assert {sid for (sid,) in listed} == {s.submission_id for s in by_file.values()}
