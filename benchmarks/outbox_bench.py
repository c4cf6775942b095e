"""The outbox's cost per intake (issues 13 and 14): ``deliver_answers`` over a day's files, as
an intake calls it (inside ``shared_reads``), from a copy of one HOME that received them with
nothing posted, so main and a branch post the same answers.

    python benchmarks/outbox_bench.py setup [--files 5000]   # once: the HOME, intake untimed
    PYTHONPATH=<tree> python benchmarks/outbox_bench.py time  # one timed delivery of that tree

The files are the first ``--files`` of the 2026-03-04 inbox of the national daily set
(``.bench/daily-65000-2026-03-04-30-h1-m12``, :mod:`benchmarks.daily_bench`) with its registry.
``time`` prints one JSON line: the process's CPU seconds (user, system) and wall time of
``deliver_answers``, the answers posted and the files the outbox holds after.
Run ``time`` under ``flock /tmp/npr-cpu.lock``, main and branch alternated.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from npr_pipeline.feedback import deliver
from npr_pipeline.home import Home
from npr_pipeline.intake import run
from npr_pipeline.settings import load_settings
from npr_pipeline.store.state import shared_reads

DATASET = Path(__file__).resolve().parents[1] / ".bench" / "daily-65000-2026-03-04-30-h1-m12"
WORK = Path(__file__).resolve().parents[1] / ".bench" / "outbox-work"


def setup(files: int) -> None:
    """A HOME with the registry and ``files`` files received, their answers not posted."""
    shutil.rmtree(WORK, ignore_errors=True)
    inbox = WORK / "inbox"
    inbox.mkdir(parents=True)
    for path in sorted((DATASET / "inbox-2026-03-04").iterdir())[:files]:
        (inbox / path.name).symlink_to(path)
    npr = Path(sys.executable).with_name("npr")
    home = WORK / "home"
    registry = DATASET / "registry.csv"
    subprocess.run([npr, "--home", home, "registry", "import", registry], check=True)
    answered: list[str] = []
    run.deliver_answers = lambda _home, _settings, ids, **_: answered.extend(ids)
    run.intake_directory(Home(root=home), inbox)
    (WORK / "answered.json").write_text(json.dumps(sorted(answered)), encoding="utf-8")


def timed() -> None:
    """One delivery of the set-up HOME's answers, from a copy of it."""
    ids = json.loads((WORK / "answered.json").read_text(encoding="utf-8"))
    with tempfile.TemporaryDirectory(dir=WORK) as scratch:
        home = Home(root=Path(scratch) / "home")
        shutil.copytree(WORK / "home", home.root, symlinks=True)
        settings = load_settings(home)
        os.sync()  # the copy's writeback is not the delivery's system time
        before, wall = os.times(), time.perf_counter()
        with shared_reads():
            deliver.deliver_answers(home, settings, ids, committed=len(ids))
        after, wall = os.times(), time.perf_counter() - wall
        posted = sum(1 for _ in (home.root / "outbox" / "edi").iterdir())
        written = sum(len(files) for _, _, files in os.walk(home.root / "outbox"))
    user, system = after.user - before.user, after.system - before.system
    print(json.dumps({"code": deliver.__file__, "files": len(ids), "messages": posted,
                      "outbox_files": written, "user_s": round(user, 2),
                      "sys_s": round(system, 2), "cpu_s": round(user + system, 2),
                      "wall_s": round(wall, 2)}))  # fmt: skip


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("step", choices=("setup", "time"))
    parser.add_argument("--files", type=int, default=5_000)
    args = parser.parse_args()
    setup(args.files) if args.step == "setup" else timed()
