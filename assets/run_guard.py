"""Before a run starts: a killed run must not block it, and a live one must not make it wait.

A run started by ``npr run`` executes in the launching process, so when that process is killed
(kill -9, a crash, a reboot) Dagster never hears of it: the run stays STARTED and keeps the
``warehouse`` pool slot of the step it was in, and every later run waits for that slot forever.
Every run therefore records who launched it (process id, its start time, host) in its tags;
before launching, :func:`clear_dead_runs` marks failed each in-progress run whose launching
process is gone and frees the pool slots of every run that is no longer in progress. A run that
is still alive (or whose process cannot be checked from here) refuses the new one at once
(:class:`~npr_pipeline.errors.Refused`, exit 3), naming it, instead of a silent wait.
"""

from __future__ import annotations

import os
import socket
from pathlib import Path

from dagster import DagsterInstance, DagsterRunStatus, RunsFilter

from npr_pipeline.errors import Refused
from npr_pipeline.home import Home

PID_TAG = "npr/launcher_pid"
START_TAG = "npr/launcher_start"  # the process's start time: a reused pid is not the launcher
HOST_TAG = "npr/launcher_host"

# NOT_STARTED: created but killed before it started (holds no slot, but is never going to run).
IN_PROGRESS = [
    DagsterRunStatus.NOT_STARTED,
    DagsterRunStatus.STARTING,
    DagsterRunStatus.STARTED,
    DagsterRunStatus.CANCELING,
]


def launcher_tags() -> dict[str, str]:
    """Run tags that identify this process, so a later run can tell whether it still lives."""
    tags = {PID_TAG: str(os.getpid()), HOST_TAG: socket.gethostname()}
    started = _proc_stat(os.getpid())
    if started is not None:
        tags[START_TAG] = started[1]
    return tags


def _proc_stat(pid: int) -> tuple[str, str] | None:
    """(state, start time in clock ticks) of a process from /proc, or None where unavailable."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat.rsplit(")", 1)[1].split()  # after "pid (comm)": field 3 is fields[0]
    return fields[0], fields[19]


def launcher_alive(tags: dict[str, str]) -> bool | None:
    """Whether the process that launched a run still runs; None if it cannot be told from here
    (launched on another host, or not by ``npr run``)."""
    if PID_TAG not in tags or tags.get(HOST_TAG) != socket.gethostname():
        return None
    pid = int(tags[PID_TAG])
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # exists, belongs to another user
    stat = _proc_stat(pid)
    if stat is None:
        return True
    state, started = stat
    if state == "Z":  # killed, not yet reaped by its parent
        return False
    return START_TAG not in tags or tags[START_TAG] == started


def _describe(run) -> str:
    tags = run.tags
    what = f"run {run.run_id}"
    if "npr/period" in tags:
        what += f" ({tags['npr/period']}, {tags.get('npr/steps', 'all steps')}"
        what += f", by {tags.get('npr/requested_by', '?')})"
    if PID_TAG in tags:
        what += f" from process {tags[PID_TAG]} on {tags.get(HOST_TAG, '?')}"
    return what


def clear_dead_runs(instance: DagsterInstance) -> list[str]:
    """Mark failed the in-progress runs whose launcher is gone and free every pool slot held by
    a run no longer in progress; refuse (Refused) while a live run is in progress.

    Returns one line per run it marked failed, for the operator.
    """
    recovered: list[str] = []
    live: list[str] = []
    for run in instance.get_runs(RunsFilter(statuses=IN_PROGRESS)):
        alive = launcher_alive(run.tags)
        if alive is False:
            instance.report_run_failed(
                run,
                message="The process that ran this run is gone (killed or crashed); marked "
                "failed by the next npr run so that its pool slots are freed.",
            )
            recovered.append(f"{_describe(run)}: its process is gone; marked failed")
        elif run.status != DagsterRunStatus.NOT_STARTED:
            live.append(
                _describe(run)
                + ("" if alive else " (cannot check whether its process lives: if it is dead, "
                   "terminate it in the Dagster UI)")
            )  # fmt: skip
    storage = instance.event_log_storage
    if storage.supports_global_concurrency_limits:
        in_progress = {r.run_id for r in instance.get_runs(RunsFilter(statuses=IN_PROGRESS))}
        for run_id in storage.get_concurrency_run_ids() - in_progress:
            storage.free_concurrency_slots_for_run(run_id)
    if live:
        raise Refused(
            f"another run is in progress and holds or will take the warehouse pool: {live[0]}"
            + (f" (+{len(live) - 1} more)" if len(live) > 1 else "")
            + "; wait for it to finish, then run again"
        )
    return recovered


def clear_dead_runs_of(home: Home) -> list[str]:
    """:func:`clear_dead_runs` on HOME's Dagster instance (what ``npr run`` calls first)."""
    home.ensure()
    with DagsterInstance.from_config(str(home.dagster_home)) as instance:
        return clear_dead_runs(instance)
