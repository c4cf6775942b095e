"""One file never harms another, two intakes never corrupt the ledger, a kill leaves nothing
that blocks or changes the next run.

Failures on the register's side are made real: an exception inside the reader for one file, a
pool worker that dies, a second intake holding HOME, and kill -9 of the intake process (not its
group) at several points, each followed by a rerun that must equal one clean run.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import pytest

from npr_pipeline.feedback.outbox import outbox, scratch
from npr_pipeline.home import Home
from npr_pipeline.intake import run as run_module
from npr_pipeline.intake.archive import archive_file, sync_archive
from npr_pipeline.intake.reasons import Status
from npr_pipeline.intake.run import intake_directory, sweep_interrupted
from npr_pipeline.locking import HomeLocked, home_lock
from npr_pipeline.registry import import_registry
from npr_pipeline.store.ledger import load_failed, load_records
from tests.intake_files import (
    Unit,
    decode,
    encode,
    fill_inbox,
    make_year,
    run_intake,
    table_contents,
)
from tests.soak import KILL_TEST

NPR = Path(sys.executable).with_name("npr")


@pytest.fixture(scope="module")
def year(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Unit], Path]:
    out = tmp_path_factory.mktemp("synth-isolation")
    return make_year(out, units=3, through=2, episodes=6.0), out


def _home(root: Path, registry: Path) -> Home:
    home = Home(root=root).ensure()
    import_registry(home, registry)
    return home


def _statuses(summary) -> dict[str, str]:
    return {s.file: s.status for s in summary.submissions}


def _state(home: Home) -> tuple[dict[str, tuple], dict[str, object]]:
    """The ledger without receipt times (they differ between runs) and every lake table."""
    records = {
        r.submission_id: (r.status, r.unit, r.lopenr, tuple(x["code"] for x in r.reasons))
        for r in load_records(home)
    }
    return records, table_contents(home)


def _archived_name(path: Path, tmp_path: Path) -> str:
    """The content-addressed name intake archives ``path`` under (what the reader opens)."""
    return archive_file(path, tmp_path / "probe").path.name


def _failing_on(name: str, failure):
    """``read_submission`` that fails for the archived file ``name`` and reads the others."""
    real = run_module.read_submission

    def read(path: Path, *args, **kwargs):
        if path.name == name:
            failure()
        return real(path, *args, **kwargs)

    return read


def _bug() -> None:
    raise RuntimeError("bug in the reader")


def test_unexpected_error_fails_that_file_only_and_the_next_intake_retries_it(
    year, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    units, out = year
    inbox = out / "inbox"
    victim = sorted(inbox.glob("*_ord.xml"))[1].name  # not the first nor the last file
    home = _home(tmp_path / "home", out / "registry.csv")
    failing = _failing_on(_archived_name(inbox / victim, tmp_path), _bug)
    monkeypatch.setattr(run_module, "read_submission", failing)
    first = run_intake(home, inbox, workers=2)  # forked workers inherit the patch
    statuses = _statuses(first)
    assert statuses.pop(victim) == Status.FAILED
    assert set(statuses.values()) == {Status.ACCEPTED}, "every other file is committed"
    failed = next(s for s in first.submissions if s.file == victim)
    assert [r.code for r in failed.reasons] == ["internal_error"]
    assert "bug in the reader" in failed.reasons[0].message
    assert [r.file for r in load_failed(home)] == [victim]
    assert first.as_json()["failed"] == 1
    log = (home.root / "logs" / "npr-errors.log").read_text()  # the ledger keeps only a line
    assert f"intake: {victim} ({failed.submission_id}) failed" in log
    assert "Traceback" in log and "bug in the reader" in log

    monkeypatch.undo()
    second = run_intake(home, inbox, workers=2)
    retried = _statuses(second)
    assert retried.pop(victim) == Status.ACCEPTED, "a failed file is not a duplicate"
    assert set(retried.values()) == {Status.DUPLICATE}
    assert load_failed(home) == []

    clean = _home(tmp_path / "clean", out / "registry.csv")
    run_intake(clean, inbox, workers=2)
    assert _state(home) == _state(clean)


def test_a_copy_of_a_failed_file_in_the_same_inbox_is_failed_too(
    year, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Found by the mutant campaign: the copy was a ``duplicate`` of a file nothing received
    (CONTRACT: a duplicate of a failed file is not a duplicate)."""
    units, out = year
    victim = sorted((out / "inbox").glob("*_ord.xml"))[1]
    inbox = fill_inbox(tmp_path / "inbox", [victim], **{"zz_copy.xml": victim.read_bytes()})
    home = _home(tmp_path / "home", out / "registry.csv")
    monkeypatch.setattr(run_module, "read_submission",
                        _failing_on(_archived_name(victim, tmp_path), _bug))  # fmt: skip
    first = run_intake(home, inbox, workers=1)
    assert _statuses(first) == {victim.name: Status.FAILED, "zz_copy.xml": Status.FAILED}
    copy = next(s for s in first.submissions if s.file == "zz_copy.xml")
    assert [r.code for r in copy.reasons] == ["internal_error"]
    assert first.as_json()["failed"] == 2 and first.as_json()["duplicates"] == 0
    monkeypatch.undo()
    second = run_intake(home, inbox, workers=1)
    assert _statuses(second) == {victim.name: Status.ACCEPTED, "zz_copy.xml": Status.DUPLICATE}


def test_a_worker_that_dies_fails_its_files_not_the_run(
    year, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    units, out = year
    inbox = out / "inbox"
    victim = sorted(inbox.glob("*_ide.xml"))[1].name
    home = _home(tmp_path / "home", out / "registry.csv")
    dying = _failing_on(_archived_name(inbox / victim, tmp_path), lambda: os._exit(9))
    monkeypatch.setattr(run_module, "read_submission", dying)  # as the OOM killer would
    # a death fails the files of its chunk (the worker's task) and every chunk the pool has
    # not finished: a file a chunk, so that the files before the victim's are finished
    monkeypatch.setattr(run_module, "CHUNK_FILES", 1)
    statuses = _statuses(run_intake(home, inbox, workers=2))
    assert statuses[victim] == Status.FAILED
    assert Status.ACCEPTED in statuses.values(), "files finished before the death are committed"
    monkeypatch.undo()
    again = _statuses(run_intake(home, inbox, workers=2))
    assert {again[f] for f, s in statuses.items() if s == Status.FAILED} == {Status.ACCEPTED}
    clean = _home(tmp_path / "clean", out / "registry.csv")
    run_intake(clean, inbox, workers=2)
    assert _state(home) == _state(clean)


def test_second_intake_waits_then_gives_up_naming_the_holder(tmp_path: Path) -> None:
    home = Home(root=tmp_path / "home").ensure()
    told: list[str] = []
    with home_lock(home, "intake", wait=0):
        started = time.monotonic()
        with pytest.raises(HomeLocked, match=f"pid {os.getpid()}"):
            intake_directory(home, tmp_path, wait=0.6, on_wait=told.append)
        assert time.monotonic() - started >= 0.6
    assert len(told) == 1 and str(os.getpid()) in told[0]
    with home_lock(home, "intake", wait=0):  # released: free again at once
        pass


def test_lock_held_by_another_process_gives_exit_3(year, tmp_path: Path) -> None:
    units, out = year
    home = _home(tmp_path / "home", out / "registry.csv")
    holder = subprocess.Popen(
        [sys.executable, "-c", _HOLD, str(home.root)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout.readline().strip() == "held"
        done = subprocess.run(
            [str(NPR), "--home", str(home.root), "intake", str(out / "inbox"), "--wait", "1"],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == 3, done.stderr
        assert f"pid {holder.pid}" in done.stderr
        assert load_records(home) == []
    finally:
        holder.kill()
        holder.wait()
    # the holder died holding the lock: the kernel has released it
    assert _statuses(run_intake(home, out / "inbox"))


_HOLD = """
import sys, time
from npr_pipeline.home import Home
from npr_pipeline.locking import home_lock
with home_lock(Home(root=sys.argv[1]), "intake", wait=0):
    print("held", flush=True)
    time.sleep(600)
"""


@pytest.mark.soak
def test_two_intakes_at_once_end_as_a_sequential_run(year, tmp_path: Path) -> None:
    """Two inboxes claim the same (unit, type, year, lopenr) with different bytes: exactly one
    is accepted, whichever runs first, and the end state equals a sequential run."""
    units, out = year
    unit = next(iter(units.values()))
    original = unit.file("ord", 1)
    twin = encode(decode(original.read_bytes()).replace('versjonUt="', 'versjonUt="x', 1))
    inbox_a = fill_inbox(tmp_path / "a", sorted((out / "inbox").glob("*")))
    inbox_b = fill_inbox(tmp_path / "b", **{original.name: twin})
    home = _home(tmp_path / "home", out / "registry.csv")
    results: dict[str, object] = {}

    def run(name: str, inbox: Path) -> None:
        results[name] = intake_directory(home, inbox, wait=120)

    threads = [
        threading.Thread(target=run, args=(n, i)) for n, i in (("a", inbox_a), ("b", inbox_b))
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=180)
    assert set(results) == {"a", "b"}
    records = load_records(home)
    same_lopenr = [
        r for r in records if r.unit == unit.resh and r.message_type == "NPR_ORD" and r.lopenr == 1
    ]
    assert [r.status for r in same_lopenr].count(Status.ACCEPTED) == 1
    assert {c["code"] for r in same_lopenr for c in r.reasons} >= {"lopenr_reused"}
    b_first = results["b"].submissions[0].status == Status.ACCEPTED
    sequential = _home(tmp_path / "sequential", out / "registry.csv")
    for inbox in (inbox_b, inbox_a) if b_first else (inbox_a, inbox_b):
        intake_directory(sequential, inbox)
    assert _state(home) == _state(sequential)


def test_interrupted_files_are_swept_at_the_next_start(tmp_path: Path) -> None:
    home = Home(root=tmp_path / "home").ensure()
    leftovers = [
        home.ledger / ".abc.json.x1y2.tmp",
        home.feedback / "abc" / ".XPR_VAL.xml.zz.tmp",
        home.root / "staging" / "abc" / "episodes.parquet",
        scratch(home) / ".0123.xml.k9.tmp",
    ]
    for path in leftovers:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"half")
    kept = home.ledger / "abc.json"
    kept.write_text("{}")
    untouched = home.feedback / "other" / ".XPR_VAL.xml.zz.tmp"  # not this run's: not walked
    untouched.parent.mkdir()
    untouched.write_bytes(b"half")
    posted = outbox(home) / "edi" / "0123.xml"  # the outbox itself is never walked
    posted.parent.mkdir(parents=True)
    posted.write_bytes(b"<MsgHead/>")
    sweep_interrupted(home, ["abc"])
    assert [p for p in leftovers if p.exists()] == []
    assert kept.exists() and untouched.exists() and posted.exists()


def test_the_feedback_sweep_removes_what_glob_matches_and_nothing_else(tmp_path: Path) -> None:
    """The sweep of a file's feedback folder removes exactly the names ``.*.tmp`` matches (an
    atomic write's temporary files), and passes over a folder that does not exist."""
    home = Home(root=tmp_path / "home").ensure()
    folder = home.feedback / "abc"
    folder.mkdir(parents=True)
    names = [".XPR_VAL.xml.123.4.tmp", "..tmp", ".tmp", "a.tmp", ".x.tmpx", "XPR_VAL.xml", ".x"]
    for name in names:
        (folder / name).write_bytes(b"x")
    matched = {p.name for p in folder.glob(".*.tmp")}
    sweep_interrupted(home, ["abc", "never-written"])
    assert sorted(p.name for p in folder.iterdir()) == sorted(set(names) - matched)
    assert matched == {".XPR_VAL.xml.123.4.tmp", "..tmp"}


# Where to kill: halfway through the commits, as soon as the reading workers exist, after the
# last commit while the content checks and the warehouse sync run, and after every commit of
# the twelve.
KILL_POINTS = {"half-committed": (False, 5), "workers": (True, 0), "checking": (False, 12)}
KILL_POINTS |= {f"after-{n}-commits": (False, n) for n in range(1, 12)}


def _reports(home: Home) -> int:
    return len(list(home.feedback.glob("*/XPR_VAL*")))


@pytest.mark.soak
@KILL_TEST
@pytest.mark.parametrize("point", list(KILL_POINTS))
def test_kill_9_of_intake_then_rerun_equals_a_clean_run(year, tmp_path: Path, point: str) -> None:
    """kill -9 of the main process only: its workers die with it, the lock is free, and the
    rerun ends in exactly the clean run's state."""
    units, out = year
    inbox = out / "inbox"
    clean = _home(tmp_path / "clean", out / "registry.csv")
    run_intake(clean, inbox)
    home = _home(tmp_path / "home", out / "registry.csv")
    proc = subprocess.Popen(
        [str(NPR), "--home", str(home.root), "intake", str(inbox), "--json"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    need_workers, records = KILL_POINTS[point]
    children: list[int] = []
    deadline = time.monotonic() + 120
    while proc.poll() is None and time.monotonic() < deadline:
        children = _children(proc.pid)
        # XPR_VAL is written just before a file's record joins the next commit
        if (children or not need_workers) and _reports(home) >= records:
            break
        time.sleep(0.01)
    assert proc.poll() is None, "intake finished before the kill point"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    if need_workers:
        assert children, "the kill point is while workers read"
    _workers_die_and_the_rerun_equals(clean, home, inbox, children)
    assert not (home.root / "staging").exists() or not any((home.root / "staging").iterdir())


def _children(pid: int) -> list[int]:
    try:
        text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    except OSError:
        return []
    return [int(x) for x in text.split()]


def _workers_die_and_the_rerun_equals(
    clean: Home, home: Home, inbox: Path, children: list[int]
) -> None:
    """After a kill -9 of intake: its workers die with it (within 10 s), and a rerun of the
    same inbox fails no file and leaves the state one clean run leaves."""
    deadline = time.monotonic() + 10
    while any(_alive(pid) for pid in children) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not [pid for pid in children if _alive(pid)], "workers outlived their parent"
    rerun = run_intake(home, inbox, timeout=120)
    assert Status.FAILED not in _statuses(rerun).values()
    assert _state(home) == _state(clean)


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0]
    except OSError:
        return False
    return state != "Z"


def test_intake_json_reports_failed_and_exit_1(
    year, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The CLI's contract: ``failed`` in the JSON and exit 1 when any file failed."""
    from typer.testing import CliRunner

    from npr_pipeline.cli import app

    units, out = year
    home = _home(tmp_path / "home", out / "registry.csv")

    def broken(*args, **kwargs):
        raise MemoryError("no room")

    monkeypatch.setattr(run_module, "read_submission", broken)
    one = fill_inbox(tmp_path / "one", [next(iter(units.values())).file("ord", 1)])
    result = CliRunner().invoke(
        app, ["--home", str(home.root), "intake", str(one), "--json", "--workers", "1"]
    )
    assert result.exit_code == 1, result.output
    doc = json.loads(result.stdout[: result.stdout.rindex("}") + 1])
    assert doc["failed"] == 1 and doc["submissions"][0]["status"] == "failed"


def test_an_archive_copy_cut_short_before_its_sync_is_replaced(tmp_path: Path) -> None:
    """Intake archives without an fsync per file and syncs once per commit batch: a crash before
    that sync may leave a renamed copy without all its bytes, which the next intake replaces."""
    source = tmp_path / "file.xml"
    source.write_bytes(b"<Melding/>" * 100)
    first = archive_file(source, tmp_path / "archive", durable=False)
    assert not first.existed and first.path.read_bytes() == source.read_bytes()
    first.path.chmod(0o644)
    first.path.write_bytes(b"")  # what a power cut before the sync can leave
    again = archive_file(source, tmp_path / "archive", durable=False)
    assert not again.existed and again.path.read_bytes() == source.read_bytes()
    sync_archive(tmp_path / "archive")
    assert archive_file(source, tmp_path / "archive").existed


class _CountedPools:
    """Every reading pool an intake starts and shuts down, and the most alive at once."""

    def __init__(self) -> None:
        self.started = self.most = 0
        self.live: set[int] = set()

    def pool(self, real: type[ProcessPoolExecutor]) -> type[ProcessPoolExecutor]:
        counter = self

        class Counted(real):  # type: ignore[misc, valid-type]
            def __init__(self, *args: object, **kwargs: object) -> None:
                super().__init__(*args, **kwargs)
                counter.started += 1
                counter.live.add(id(self))
                counter.most = max(counter.most, len(counter.live))

            def shutdown(self, *args: object, **kwargs: object) -> None:
                super().shutdown(*args, **kwargs)
                counter.live.discard(id(self))

        return Counted


def test_overlapped_pools_replace_the_workers_and_never_exceed_two(
    year, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With one file per worker per pool, every generation reads in fresh workers (what bounds
    their memory), the next pool starts before the current one has handed on its outcomes
    (two live at once: no drain between them), never a third, and the result is a clean run's."""
    units, out = year
    inbox = out / "inbox"
    clean = _home(tmp_path / "clean", out / "registry.csv")
    run_intake(clean, inbox)
    monkeypatch.setattr(run_module, "WORKER_FILES", 1)
    monkeypatch.setattr(run_module, "CHUNK_FILES", 1)  # one file a chunk: a generation of two
    counted = _CountedPools()
    monkeypatch.setattr(run_module, "ProcessPoolExecutor", counted.pool(ProcessPoolExecutor))
    workers = tmp_path / "workers"
    real_init = run_module._init_worker

    def init(*args: object) -> None:  # forked, not pickled: a closure does
        with workers.open("a") as pids:
            pids.write(f"{os.getpid()}\n")
        real_init(*args)  # type: ignore[arg-type]

    monkeypatch.setattr(run_module, "_init_worker", init)
    home = _home(tmp_path / "home", out / "registry.csv")
    files = len(list(inbox.iterdir()))
    summary = run_intake(home, inbox)
    assert Status.FAILED not in _statuses(summary).values()
    assert counted.started >= files // 2  # a pool per two files (the last one may be empty)
    assert len(set(workers.read_text().split())) >= files - 1
    assert counted.most == 2 and not counted.live
    assert _state(home) == _state(clean)


_SMALL_GENERATIONS = """
import sys
from npr_pipeline.intake import run
run.WORKER_FILES = 1
run.CHUNK_FILES = 1
from npr_pipeline.cli import app
sys.argv[0] = "npr"
app()
"""


@pytest.mark.soak
@KILL_TEST
def test_kill_9_while_two_pools_overlap_then_rerun_equals_a_clean_run(year, tmp_path: Path) -> None:
    """kill -9 of the main process while the retiring pool's workers and the next pool's read
    side by side: all four die with it, and the rerun ends in exactly the clean run's state."""
    units, out = year
    inbox = out / "inbox"
    clean = _home(tmp_path / "clean", out / "registry.csv")
    run_intake(clean, inbox)
    home = _home(tmp_path / "home", out / "registry.csv")
    for attempt in range(5):  # the overlap is short: an attempt may miss it
        proc = subprocess.Popen(
            [sys.executable, "-c", _SMALL_GENERATIONS, "--home", str(home.root), "intake",
             str(inbox), "--json"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )  # fmt: skip
        children: list[int] = []
        deadline = time.monotonic() + 120
        while proc.poll() is None and time.monotonic() < deadline:
            children = _children(proc.pid)
            if len(children) > 2:  # two pools' workers
                break
            time.sleep(0.002)
        if proc.poll() is None:
            break
        home = _home(tmp_path / f"home-{attempt}", out / "registry.csv")
    assert len(children) > 2 and proc.poll() is None, "no kill while two pools overlapped"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    _workers_die_and_the_rerun_equals(clean, home, inbox, children)
