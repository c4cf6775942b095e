"""The period's input snapshot: the period views, materialised; what production reads.

Every column but the fødselsnummer, which stays in the identity vault.

``build_snapshot`` reads the lake once into tables, so GX's many queries each scan one table
and the steps do not read ~16,000 small files again; the tables must hold exactly the rows of
the views over the lake. A step reads only a snapshot whose checks passed, and publishes what
was checked even when a unit resubmits in between.
"""

from __future__ import annotations

import json
import os
import subprocess
from datetime import date
from pathlib import Path

import duckdb
import pytest

from npr_pipeline.home import Home
from npr_pipeline.intake.run import intake_directory
from npr_pipeline.periods import Period
from npr_pipeline.production import snapshot
from npr_pipeline.production.gate import Override, OverrideError
from npr_pipeline.production.inputs import period_input, register_period_views
from npr_pipeline.production.run import produce
from npr_pipeline.production.snapshot import (
    GateClosed,
    SnapshotNotReady,
    build_snapshot,
    record_verdict,
    snapshot_path,
)
from npr_pipeline.store.lake import versions
from npr_pipeline.store.ledger import load_ledger
from tests.handbuilt import (
    ALERIS,
    HAUKELAND,
    Episode,
    Patient,
    Submission,
    at,
    fnr,
    new_home,
    receive,
)
from tests.handbuilt import query as warehouse_query
from tests.intake_files import home_copy

PERIOD_TABLES = (
    "excluded", "patients", "departments", "episodes", "diagnoses", "procedures", "referrals",
    "postponements", "idents", "raw_episodes", "raw_patients", "raw_idents",
)  # fmt: skip


@pytest.fixture(scope="module")
def received(received_defect_year: Path, tmp_path_factory: pytest.TempPathFactory) -> Home:
    """The defect year through intake (error records to exclude), registry imported."""
    return home_copy(received_defect_year, tmp_path_factory.mktemp("speed-db") / "home")


def test_snapshot_holds_the_period_views_as_tables(received: Home) -> None:
    """Row for row (the units the gate let in), per month; at least one month has exclusions,
    which must stay applied."""
    with_exclusions = 0
    for month in ("2026-01", "2026-02", "2026-03"):
        period = Period.parse(month)
        build_snapshot(received, period)
        path = snapshot_path(received, period)
        stored = duckdb.connect(str(path), read_only=True)
        included = [
            u for (u,) in stored.execute("SELECT DISTINCT unit FROM input_submissions").fetchall()
        ]
        views = duckdb.connect()
        register_period_views(
            views, received, period_input(load_ledger(received), period, included)
        )
        try:
            tables = {
                t for (t,) in stored.execute("SELECT table_name FROM duckdb_tables()").fetchall()
            }
            assert set(PERIOD_TABLES) <= tables
            assert not stored.execute("SELECT 1 FROM duckdb_views() WHERE NOT internal").fetchall()
            for table in PERIOD_TABLES:
                query = f"SELECT * FROM {table} ORDER BY ALL"
                # the identity numbers stay in the vault: the snapshot has every other column
                in_views = query.replace("*", "* EXCLUDE (fid)") if "idents" in table else query
                assert stored.execute(query).fetchall() == views.execute(in_views).fetchall(), table
            assert not stored.execute(
                "SELECT table_name FROM duckdb_columns() WHERE column_name = 'fid'"
            ).fetchall(), "the snapshot copies fødselsnummer out of the vault"
            (lake_versions,) = stored.execute("SELECT lake_versions FROM build").fetchall()[0]
            assert json.loads(lake_versions) == versions(received) != {}
            excluded, kept, raw = stored.execute(
                "SELECT (SELECT count(*) FROM excluded), (SELECT count(*) FROM episodes), "
                "(SELECT count(*) FROM raw_episodes)"
            ).fetchall()[0]
        finally:
            stored.close()
            views.close()
        assert kept > 0
        with_exclusions += excluded > 0 and kept < raw
    assert with_exclusions, "no month with excluded episodes: the exclusions are not exercised"


def _carried(home: Home, period: Period) -> bool:
    """Whether the period's newest build started from a copy of the previous one."""
    with duckdb.connect(str(snapshot_path(home, period)), read_only=True) as con:
        return bool(con.execute("SELECT carried FROM build").fetchall()[0][0])


def test_a_new_snapshot_version_rebuilds_from_the_lake(
    received: Home, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Unchanged monthly submissions carry the previous build over; a raised
    ``SNAPSHOT_VERSION`` (the code that makes the monthly rows changed) builds from the lake,
    and the build after it carries again."""
    period = Period.parse("2026-02")
    build_snapshot(received, period)
    build_snapshot(received, period)
    assert _carried(received, period)
    monkeypatch.setattr(snapshot, "SNAPSHOT_VERSION", snapshot.SNAPSHOT_VERSION + 1)
    build_snapshot(received, period)
    assert not _carried(received, period)
    build_snapshot(received, period)
    assert _carried(received, period)


def _patients(extra: bool) -> list[Patient]:
    """One patient; the resubmission adds a second contact."""
    episodes = [Episode("E1", at("2026-03-02", "09:00"), at("2026-03-02", "09:30"))]
    if extra:
        episodes.append(Episode("E2", at("2026-03-09", "09:00"), at("2026-03-09", "09:30")))
    return [Patient("P1", fnr(date(1960, 1, 1)), episodes=tuple(episodes))]


def _received_episodes(home: Home, version: int) -> int:
    return int(
        warehouse_query(
            home,
            "SELECT episodes_received FROM kjernejournal_counts "
            "WHERE period = '2026-03' AND version = ?",
            [version],
        ).iloc[0, 0]
    )


def _lineage(home: Home, version: int) -> list[str]:
    raw = warehouse_query(
        home,
        "SELECT submissions FROM delivery_versions "
        "WHERE step = 'kjernejournal' AND period = '2026-03' AND version = ?",
        [version],
    ).iloc[0, 0]
    return sorted(row["submission_id"] for row in json.loads(raw))


def test_a_step_publishes_the_checked_snapshot_not_a_later_submission(tmp_path: Path) -> None:
    """A resubmission received after the checks waits for the next run's snapshot."""
    home = new_home(tmp_path, [HAUKELAND])
    first = receive(home, tmp_path / "in1", Submission(HAUKELAND, 3, 1, _patients(False)))
    period = Period.parse("2026-03")
    record_verdict(home, period, build_snapshot(home, period), "run-1", passed=True)
    second = receive(home, tmp_path / "in2", Submission(HAUKELAND, 3, 2, _patients(True)))

    assert produce(home, period, "kjernejournal", "run-1").version == 1
    assert _received_episodes(home, 1) == 1
    assert _lineage(home, 1) == sorted(s.submission_id for s in first.submissions)

    record_verdict(home, period, build_snapshot(home, period), "run-2", passed=True)
    assert produce(home, period, "kjernejournal", "run-2").version == 2
    assert _received_episodes(home, 2) == 2
    assert _lineage(home, 2) == sorted(s.submission_id for s in second.submissions)


def test_a_step_refuses_a_snapshot_without_passing_checks(tmp_path: Path) -> None:
    home = new_home(tmp_path, [HAUKELAND])
    receive(home, tmp_path / "in", Submission(HAUKELAND, 3, 1, _patients(False)))
    period = Period.parse("2026-03")
    with pytest.raises(SnapshotNotReady, match="No input snapshot for 2026-03"):
        produce(home, period, "kjernejournal", "run-1")
    build = build_snapshot(home, period)
    with pytest.raises(SnapshotNotReady, match="has not passed the blocking checks"):
        produce(home, period, "kjernejournal", "run-1")
    record_verdict(home, period, build, "run-1", passed=False)
    with pytest.raises(SnapshotNotReady, match="has not passed the blocking checks"):
        produce(home, period, "kjernejournal", "run-1")
    record_verdict(home, period, build, "run-1", passed=True)
    assert produce(home, period, "kjernejournal", "run-1").version == 1


def test_a_verdict_belongs_to_the_build_it_judged(tmp_path: Path) -> None:
    """Two runs of one period: the first run's verdict cannot land on the second's snapshot."""
    home = new_home(tmp_path, [HAUKELAND])
    receive(home, tmp_path / "in", Submission(HAUKELAND, 3, 1, _patients(False)))
    period = Period.parse("2026-03")
    first = build_snapshot(home, period)
    second = build_snapshot(home, period)
    with pytest.raises(SnapshotNotReady, match="replaced by another run"):
        record_verdict(home, period, first, "run-1", passed=True)
    with pytest.raises(SnapshotNotReady, match="has not passed the blocking checks"):
        produce(home, period, "kjernejournal", "run-1")
    record_verdict(home, period, second, "run-2", passed=True)
    assert produce(home, period, "kjernejournal", "run-2").version == 1


def _gate_table(home: Home, period: Period, table: str) -> list[tuple]:
    con = duckdb.connect(str(snapshot_path(home, period)), read_only=True)
    try:
        return con.execute(f"SELECT * FROM {table} ORDER BY ALL").fetchall()
    finally:
        con.close()


def _half_delivered(home: Home, inbox: Path) -> list[str]:
    """Haukeland delivers in full; Aleris sends its ord but not its ide."""
    receive(home, inbox, Submission(HAUKELAND, 3, 1, _patients(False)))
    lone = Submission(ALERIS, 3, 1, _patients(False))
    folder = inbox.parent / "lone"
    folder.mkdir()
    (folder / lone.name("ord")).write_bytes(lone.file("ord"))
    summary = intake_directory(home, folder, workers=1)
    assert [s.status for s in summary.submissions] == ["accepted"]
    return [s.submission_id for s in summary.submissions]


def test_producing_refuses_a_closed_gate_whoever_calls_it(tmp_path: Path) -> None:
    """The core itself refuses: a passing quality verdict is not enough without the gate."""
    home = new_home(tmp_path, [HAUKELAND, ALERIS])
    lone_ord = _half_delivered(home, tmp_path / "in")
    period = Period.parse("2026-03")
    record_verdict(home, period, build_snapshot(home, period), "run-1", passed=True)
    for step in ("kjernejournal", "isf"):
        with pytest.raises(GateClosed, match=f"gate of {step} for 2026-03 is closed.*6574287"):
            produce(home, period, step, "run-1")
    assert not warehouse_query(
        home, "SELECT 1 FROM duckdb_tables() WHERE table_name = 'delivery_versions'"
    ).size, "nothing may be delivered through a closed gate"
    judged = {row[2]: row for row in _gate_table(home, period, "gate_judged")}
    assert judged[lone_ord[0]][-1] is False, "a lone ord never enters the snapshot"
    gates = dict((step, gate) for step, gate, _ in _gate_table(home, period, "gate"))
    assert gates["kjernejournal"] == "closed"


def test_an_override_for_a_half_delivered_unit_leaves_it_out_and_is_recorded(
    tmp_path: Path,
) -> None:
    home = new_home(tmp_path, [HAUKELAND, ALERIS])
    lone_ord = _half_delivered(home, tmp_path / "in")
    period = Period.parse("2026-03")
    override = Override.of([ALERIS.resh], "EPJ migration; agreed with the RHF", "auditor")
    build = build_snapshot(home, period, override)
    record_verdict(home, period, build, "run-1", passed=True)
    assert produce(home, period, "kjernejournal", "run-1").version == 1
    lineage = _lineage(home, 1)
    assert lone_ord[0] not in lineage and len(lineage) == 2, "the excused unit is left out whole"
    assert _gate_table(home, period, "gate_override")[0][1:3] == (
        "EPJ migration; agreed with the RHF",
        "auditor",
    )
    override_json, gate_json = warehouse_query(
        home,
        "SELECT override, gate FROM delivery_versions WHERE step = 'kjernejournal' AND version = 1",
    ).iloc[0]
    recorded, gate = json.loads(override_json), json.loads(gate_json)
    assert recorded["allowed_missing"] == [ALERIS.resh] and recorded["requested_by"] == "auditor"
    assert recorded["build_id"] == build and recorded["excused"] == [ALERIS.resh]
    assert gate["gate"] == "open" and gate["left_out"] == {ALERIS.resh: "excused"}
    # The override belongs to the build: a later call (a re-execution, another run id) keeps it.
    assert produce(home, period, "kjernejournal", "run-2").version == 2
    again = warehouse_query(
        home, "SELECT override FROM delivery_versions WHERE step = 'kjernejournal' AND version = 2"
    ).iloc[0, 0]
    assert json.loads(again)["build_id"] == build


def test_an_override_must_name_missing_units(tmp_path: Path) -> None:
    home = new_home(tmp_path, [HAUKELAND, ALERIS])
    _half_delivered(home, tmp_path / "in")
    period = Period.parse("2026-03")
    for units, problem in (
        ([HAUKELAND.resh], "not missing for 2026-03: 4802960"),
        (["1234567"], "not a unit in the registry: 1234567"),
    ):
        with pytest.raises(OverrideError, match=problem):
            build_snapshot(home, period, Override.of(units, "a reason", "auditor"))
    with pytest.raises(OverrideError, match="needs a reason"):
        Override.of([ALERIS.resh], " ", "auditor")


def test_a_killed_builds_temporary_files_are_swept_a_live_ones_kept(tmp_path: Path) -> None:
    """A run killed while building the snapshot leaves its temporary file and DuckDB's WAL
    beside it (the kill -9 campaign of session 18 found ~12 MB of them after a rerun); the next
    build removes those of a process that is gone and keeps a live build's."""
    dead = subprocess.Popen(["true"])  # noqa: S607
    dead.wait()
    target = tmp_path / "period_inputs" / "2026-03.duckdb"
    target.parent.mkdir()
    target.write_bytes(b"the last build")
    killed = [target.parent / f".2026-03.duckdb.{dead.pid}.1.tmp{end}" for end in ("", ".wal")]
    live = target.parent / f".2026-03.duckdb.{os.getpid()}.1.tmp"
    other = target.parent / f".2026-T1.duckdb.{dead.pid}.1.tmp"  # another period's: not ours
    for path in (*killed, live, other):
        path.write_bytes(b"half a build")
    assert snapshot.sweep_dead_builds(target) == killed
    assert sorted(p.name for p in target.parent.iterdir()) == sorted(
        [target.name, live.name, other.name]
    )
