"""Faster per-delivery checks change no outcome.

``check_deliveries`` splits each batch's results per delivery with one grouping and runs several
batches in worker processes; whatever the batches, every delivery must get the same results and
violations rows, XPR_ERR reports, marker and outcome as when it is checked alone, and its files
must be exactly what filtering the batch's frames and ``DataFrame.to_parquet`` wrote before.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from types import SimpleNamespace

import duckdb
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from npr_pipeline.home import Home
from npr_pipeline.intake.run import _LedgerState
from npr_pipeline.quality import submission
from npr_pipeline.quality.catalogue import load_catalogue
from npr_pipeline.quality.sql_engine import register_tables, run_checks
from npr_pipeline.quality.submission import (
    Delivery,
    QualityOutcome,
    check_again,
    check_deliveries,
    not_yet_checked,
    read_marker,
    results_file,
    results_path,
)
from npr_pipeline.store.lake import TABLES
from npr_pipeline.store.ledger import load_records
from tests.intake_files import home_copy
from tests.quality_files import (
    batch_files,
    checked_files,
    markers,
    results_rows,
    violations_files,
)
from tests.soak import SOAK


@pytest.fixture(scope="module")
def received(received_defect_year: Path, tmp_path_factory: pytest.TempPathFactory) -> Home:
    """The defect year through intake (its content checks included), registry imported."""
    return home_copy(received_defect_year, tmp_path_factory.mktemp("speed") / "home")


def _deliveries(home: Home) -> list[Delivery]:
    return _LedgerState(load_records(home)).deliveries()


def _outputs(home: Home) -> dict[str, object]:
    """Every file the checks write, by path: Parquet as rows, reports and markers as bytes.

    Parquet is compared by value: how pandas types an all-missing column depends on what else
    shares the batch, so the column types (not the values) of these files already varied with
    the batch before this work.
    """
    found = checked_files(home.root)
    for path in sorted(home.feedback.glob("*/XPR_ERR.*")):
        found[str(path.relative_to(home.root))] = path.read_bytes()
    return found


def _recheck(
    home: Home,
    monkeypatch: pytest.MonkeyPatch,
    batch: int,
    workers: int,
    episodes: int = 10**9,
    deliveries: list[Delivery] | None = None,
) -> tuple[dict[str, QualityOutcome], dict[str, object]]:
    """``deliveries`` (default all) checked again from scratch with the given batch bounds and
    workers."""
    shutil.rmtree(home.root / "quality")
    for report in home.feedback.glob("*/XPR_ERR.*"):
        report.unlink()
    monkeypatch.setattr(submission, "BATCH", batch)
    monkeypatch.setattr(submission, "BATCH_EPISODES", episodes)
    monkeypatch.setattr(submission, "WORKERS", workers)
    chosen = _deliveries(home) if deliveries is None else deliveries
    outcomes = check_deliveries(home, check_again(home, chosen), True).outcomes
    return outcomes, _outputs(home)


def test_the_order_of_the_deliveries_changes_no_file_and_no_name(
    received: Home, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An intake lists its deliveries in commit order, the rerun of a killed one in the
    ledger's: both must write the same files under the same names (the batch files' and the
    markers naming them), as one clean run does."""
    deliveries = _deliveries(received)[:5]

    def checked(order: list[Delivery]) -> tuple[object, ...]:
        outcomes, files = _recheck(received, monkeypatch, batch=2, workers=1, deliveries=order)
        quality = received.root / "quality"
        names = sorted(p.name for p in (quality / "batches").iterdir())
        marks = {str(p): p.read_bytes() for p in sorted(quality.glob("*/*/*.results.json"))}
        return outcomes, files, names, marks

    forward = checked(deliveries)
    assert len(forward[2]) == 3 and len(forward[3]) == 5  # three batches, five markers
    assert checked(deliveries[::-1]) == forward


@pytest.mark.soak
@pytest.mark.skipif(not SOAK, reason="about 14 CPU-s (two full check passes): make soak only")
def test_batches_and_workers_give_each_delivery_what_it_gets_alone(
    received: Home, monkeypatch: pytest.MonkeyPatch
) -> None:
    deliveries = _deliveries(received)
    assert len(deliveries) > 8
    assert any(d.ide is not None for d in deliveries) and any(d.ide is None for d in deliveries)
    alone, alone_files = _recheck(received, monkeypatch, batch=1, workers=1)
    # batches of at most 6 deliveries and 60 episodes (both bounds cut), in two processes
    together, together_files = _recheck(received, monkeypatch, batch=6, workers=2, episodes=60)
    assert together == alone
    assert together_files.keys() == alone_files.keys()
    assert together_files == alone_files
    assert any(o.errors for o in alone.values()), "the defect year must exercise error findings"
    violations = [v for k, v in alone_files.items() if k.endswith(".violations.parquet")]
    assert sum(len(v) for v in violations) > 0 and all(len(v) for v in violations)
    assert len(violations) < len(deliveries), "every delivery has violations: none is left out"


def test_files_are_the_batch_frames_filtered_per_delivery(
    received: Home, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each delivery's violations file byte for byte what filtering the batch's frame and
    ``to_parquet`` wrote, and its rows in the batch's results file (one file, every marker
    naming it) the batch's results filtered to the delivery."""
    deliveries = _deliveries(received)
    _recheck(received, monkeypatch, batch=len(deliveries), workers=1)
    con = duckdb.connect()
    register_tables(con, submission._files(submission._located(received, deliveries), deliveries))
    submission._register_deliveries(con, deliveries)
    results, violations = run_checks(con, list(load_catalogue()), allow_synthetic_fnr=True)
    con.close()
    for d in deliveries:
        sids = [r.submission_id for r in (d.ord, d.ide) if r is not None]
        own = violations[violations["submission_id"].isin(sids)]
        frame = results[results["submission_id"].isin(sids)].assign(
            unit=d.ord.unit,
            period_to=d.ord.period_to,
            ord_sid=d.ord.submission_id,
            ide_sid=d.ide.submission_id if d.ide else None,
        )
        frame = frame.astype({"ide_sid": "string"})
        assert read_marker(received, d.ord)["violations"] == len(own), d.ord.file
        path = results_path(received, d.ord, "violations")
        written = path.read_bytes() if path.exists() else None
        assert written == (own.to_parquet(index=False) if len(own) else None), d.ord.file
        expected = pa.Table.from_pandas(frame, preserve_index=False).to_pylist()
        assert results_rows(received.root)[submission._marker(received, d.ord)] == expected
    (only,) = batch_files(received.root)
    assert {results_file(p, m) for p, m in markers(received.root).items()} == {only}
    assert pq.read_table(only).num_rows == len(
        results[
            results["submission_id"].isin(
                [r.submission_id for r in submission._records(deliveries)]
            )
        ]
    )


def test_batches_sharing_a_connection_write_what_one_batch_writes(
    received: Home, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One connection checks every batch of a run (a worker's, or the calling process's): each
    batch finds only its own rows, and no batch's tables outlive it."""
    whole, whole_files = _recheck(received, monkeypatch, batch=10**9, workers=1)
    shared, shared_files = _recheck(received, monkeypatch, batch=2, workers=1)
    assert len(submission._batches(_deliveries(received))) > 3  # several batches, one session
    assert shared == whole
    assert shared_files == whole_files

    deliveries = _deliveries(received)[:2]
    con = submission._connection()
    files = submission._files(submission._located(received, deliveries), deliveries)
    run = submission._Run.of(received, True)
    name = submission._batch_name(run.catalogue, deliveries)
    submission._check_batch(con, run, deliveries, name, files)
    left = {name for (name,) in con.execute("SELECT table_name FROM duckdb_tables()").fetchall()}
    con.close()
    assert not left & {*TABLES, "ref_submission", "ref_pair"}, left


def test_this_process_and_a_worker_write_what_one_batch_writes(
    received: Home, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two checkers (the calling process and one spawned worker, each taking the next batch when
    done) give every delivery what one batch in one process gives it."""
    whole, whole_files = _recheck(received, monkeypatch, batch=10**9, workers=1)
    shared, shared_files = _recheck(received, monkeypatch, batch=3, workers=2)
    assert len(submission._batches(_deliveries(received))) > 3
    assert shared == whole
    assert shared_files == whole_files


class _Broken(Exception):
    pass


def test_a_batch_failing_in_this_process_stops_the_run_and_the_next_run_finishes(
    received: Home, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A batch that fails in the calling process ends the run with its error (the worker takes
    no further batch, nothing hangs); its deliveries stay pending, and the next run leaves
    exactly what one clean run leaves."""
    expected = _outputs(received)
    home = home_copy(received.root, tmp_path / "home")
    shutil.rmtree(home.root / "quality")
    for report in home.feedback.glob("*/XPR_ERR.*"):
        report.unlink()
    deliveries = _deliveries(home)
    monkeypatch.setattr(submission, "BATCH", 2)
    monkeypatch.setattr(submission, "WORKERS", 2)

    def broken(*args: object) -> None:  # this process only: the worker is spawned unpatched
        raise _Broken

    checked = submission._check_batch
    monkeypatch.setattr(submission, "_check_batch", broken)
    with pytest.raises(_Broken):
        check_deliveries(home, not_yet_checked(home, deliveries), allow_synthetic_fnr=True)
    pending = not_yet_checked(home, deliveries)
    assert 2 <= len(pending.deliveries) <= len(deliveries)  # this process's first batch at least

    monkeypatch.setattr(submission, "_check_batch", checked)
    check_deliveries(home, pending, allow_synthetic_fnr=True)
    assert not_yet_checked(home, deliveries).deliveries == []
    assert _outputs(home) == expected


def test_outcomes_count_the_violations_written(received: Home) -> None:
    """Each submission's error and warning counts are its rows in its delivery's file."""
    deliveries = _deliveries(received)
    outcomes = check_deliveries(received, check_again(received, deliveries), True).outcomes
    counted: dict[str, QualityOutcome] = {}
    files = violations_files(received.root)
    for delivery in deliveries:
        path = files[submission._marker(received, delivery.ord)]
        rows = [] if path is None else pq.read_table(path).to_pylist()
        for record in (delivery.ord, delivery.ide):
            if record is not None:
                mine = [r["severity"] for r in rows if r["submission_id"] == record.submission_id]
                counted[record.submission_id] = QualityOutcome(
                    errors=mine.count("error"), warnings=mine.count("warning")
                )
    assert outcomes == counted


def _batch_connection(home: Home) -> tuple[duckdb.DuckDBPyConnection, list[Delivery]]:
    """Every delivery of ``home`` read into one DuckDB session, as one batch of the checks."""
    deliveries = _deliveries(home)
    con = duckdb.connect()
    register_tables(con, submission._files(submission._located(home, deliveries), deliveries))
    submission._register_deliveries(con, deliveries)
    return con, deliveries


def test_the_checks_in_one_query_find_what_each_finds_alone(received: Home) -> None:
    """The catalogue's violations in one query: each check's rows, in catalogue order, exactly
    as that check alone finds them (the frames each check's own query gave, end to end)."""
    con, _ = _batch_connection(received)
    checks = list(load_catalogue())
    _, together = run_checks(con, checks, allow_synthetic_fnr=False)
    alone = [run_checks(con, [check], allow_synthetic_fnr=False)[1] for check in checks]
    con.close()
    expected = pd.concat(alone, ignore_index=True)
    assert len(together) > 0 and together["check_id"].nunique() > 3  # fnr rule and SQL rules
    assert together.astype(object).to_dict("records") == expected.astype(object).to_dict("records")


def test_a_check_that_fails_is_in_error_and_the_others_still_count(received: Home) -> None:
    """A rule whose SQL fails (here a table that does not exist) is that rule's error alone:
    every other check finds and counts what it finds without it."""
    con, _ = _batch_connection(received)
    checks = list(load_catalogue())
    broken = checks[0].model_copy(
        update={
            "id": "broken_rule",
            "expectation": "unexpected_rows",
            "kwargs": {"sql": "SELECT * FROM no_such_table"},
        }
    )
    results, violations = run_checks(con, [*checks, broken], allow_synthetic_fnr=False)
    expected_results, expected = run_checks(con, checks, allow_synthetic_fnr=False)
    con.close()
    assert violations.equals(expected) and len(expected) > 0
    failed = results[results["check_id"] == "broken_rule"]
    assert len(failed) > 0 and set(failed["status"]) == {"error"}
    assert failed["engine_error"].str.contains("no_such_table").all()
    others = results[results["check_id"] != "broken_rule"].reset_index(drop=True)
    pd.testing.assert_frame_equal(others, expected_results)


def test_the_costliest_batches_are_taken_first() -> None:
    """The checkers end close together (the cheapest batches last); each batch's results keep
    its place (``_check_beside_workers`` files them by batch number)."""

    def delivery(episodes: int) -> SimpleNamespace:
        return SimpleNamespace(ord=SimpleNamespace(episodes=episodes), ide=None)

    # costs (DELIVERY_COST 240): 1,240; 80,240; 10 * (100 + 240); 30,000 + 2 * 240
    batches = [[delivery(1_000)], [delivery(80_000)], [delivery(100)] * 10, [delivery(15_000)] * 2]
    assert submission._costliest_first(batches) == [1, 3, 2, 0]  # type: ignore[arg-type]
