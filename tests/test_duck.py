"""DuckDB openings as attachments to one instance a process (npr_pipeline.duck) keep what the
stores rely on: the file's lock across processes, the checkpoint at close, each opening's own
default database, and nothing left attached once every opening is closed."""

from __future__ import annotations

import multiprocessing
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

from npr_pipeline import duck


def _attached() -> list[str]:
    """Our databases attached to this process's instance now."""
    with duck._instance().cursor() as con:
        rows = con.execute(
            "SELECT database_name FROM duckdb_databases() WHERE database_name LIKE 'npr_%'"
        ).fetchall()
    return [name for (name,) in rows]


def _other_process_reads(path: Path) -> subprocess.CompletedProcess:
    code = f"import duckdb; print(duckdb.connect({str(path)!r}, read_only=True).sql('FROM t'))"
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)


def test_a_file_open_for_writing_is_locked_for_other_processes_until_closed(
    tmp_path: Path,
) -> None:
    path = tmp_path / "s.duckdb"
    con = duck.connect(path)
    con.execute("CREATE TABLE t AS SELECT 1 AS x")
    held = _other_process_reads(path)
    assert held.returncode != 0 and "lock" in held.stderr.lower()
    con.close()
    assert not path.with_name("s.duckdb.wal").exists()  # checkpointed as a close does
    assert _other_process_reads(path).returncode == 0
    with duck.connect(path, read_only=True) as reading:  # other readers are let in
        assert _other_process_reads(path).returncode == 0
        with pytest.raises(duckdb.Error):
            reading.execute("INSERT INTO t VALUES (2)")
    assert _attached() == []


def test_openings_of_one_file_share_it_and_the_last_close_releases_it(tmp_path: Path) -> None:
    path = tmp_path / "s.duckdb"
    first = duck.connect(path)
    first.execute("CREATE TABLE t AS SELECT 1 AS x")
    second = duck.connect(path)
    reading = duck.connect(path, read_only=True)  # reads through the read-write attachment
    first.close()
    assert second.execute("SELECT count(*) FROM t").fetchall() == [(1,)]
    assert reading.execute("SELECT count(*) FROM t").fetchall() == [(1,)]
    assert len(_attached()) == 1
    second.close()
    reading.close()
    assert _attached() == []
    assert _other_process_reads(path).returncode == 0


def test_a_read_only_file_cannot_be_opened_for_writing_beside_its_reader(tmp_path: Path) -> None:
    path = tmp_path / "s.duckdb"
    with duck.connect(path) as con:
        con.execute("CREATE TABLE t AS SELECT 1 AS x")
    with duck.connect(path, read_only=True), pytest.raises(duckdb.Error):
        duck.connect(path)
    assert _attached() == []


def test_each_opening_has_its_own_database_names_and_cursors_share_them(tmp_path: Path) -> None:
    one, two = duck.connect(), duck.connect()
    one.execute("CREATE TABLE t AS SELECT 1 AS x")
    two.execute("CREATE TABLE t AS SELECT 2 AS x")  # no clash: two empty databases
    cursor = one.cursor()
    assert cursor.execute("SELECT x FROM t").fetchall() == [(1,)]
    cursor.close()
    assert one.execute("SELECT x FROM t").fetchall() == [(1,)]  # still attached
    query = "SELECT count(*) FROM duckdb_tables() WHERE database_name = current_database()"
    assert two.execute(query).fetchall() == [(1,)]
    one.close()
    two.close()
    with duck.connect() as fresh:
        assert fresh.execute(query).fetchall() == [(0,)]
    assert _attached() == []


def test_an_uncommitted_transaction_is_rolled_back_at_close(tmp_path: Path) -> None:
    path = tmp_path / "s.duckdb"
    with duck.connect(path) as con:
        con.execute("CREATE TABLE t AS SELECT 1 AS x")
    con = duck.connect(path)
    con.begin()
    con.execute("INSERT INTO t VALUES (2)")
    con.close()
    with duck.connect(path, read_only=True) as reading:
        assert reading.execute("SELECT count(*) FROM t").fetchall() == [(1,)]


def _child_counts(path: str, out: multiprocessing.Queue) -> None:
    with duck.connect(path, read_only=True) as con:
        out.put(con.execute("SELECT count(*) FROM t").fetchall()[0][0])


def test_a_forked_child_opens_files_in_an_instance_of_its_own(tmp_path: Path) -> None:
    path = tmp_path / "s.duckdb"
    with duck.connect(path) as con:
        con.execute("CREATE TABLE t AS SELECT range AS x FROM range(3)")
    parent = duck._instance()
    fork = multiprocessing.get_context("fork")
    out = fork.Queue()
    child = fork.Process(target=_child_counts, args=(str(path), out))
    child.start()
    child.join(60)
    assert child.exitcode == 0
    assert out.get(timeout=5) == 3
    assert duck._instance() is parent
