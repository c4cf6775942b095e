"""Where intake's content checks spend their CPU, and whether a change keeps every finding.

``prepare`` runs a month's intake once on a fresh HOME and keeps the deliveries intake handed
to ``check_deliveries``; ``run`` then removes what the checks wrote (``quality/`` and every
XPR_ERR) and runs ``check_deliveries`` alone on the same deliveries, in this process (CPU of
this process and of its workers, ``RUSAGE_CHILDREN``), optionally under cProfile with one
worker, and writes a digest of every file the checks wrote: two trees' digests compared tell
whether a change altered any finding. Run it under ``flock /tmp/npr-cpu.lock``, A and B
alternated (session 11, issue 14)::

    python -m benchmarks.content_checks prepare DATASET WORK [--month 4]
    python -m benchmarks.content_checks run WORK [--label B] [--profile OUT] [--workers N]
        [--batch-episodes N]
"""

from __future__ import annotations

import argparse
import cProfile
import hashlib
import json
import os
import pickle
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

from npr_pipeline.home import Home
from npr_pipeline.quality import submission


def prepare(dataset: Path, work: Path, month: int) -> None:
    """A HOME with the month's files received, and the deliveries intake checked."""
    from npr_pipeline.intake import run

    inbox, home_dir = work / "inbox", work / "home"
    inbox.mkdir(parents=True)
    home_dir.mkdir()
    for path in sorted((dataset / "inbox").iterdir()):
        if not month or f"_2026-{month:02d}_" in path.name:
            os.link(path, inbox / path.name)  # a symbolic link to a relative DATASET broke
    (home_dir / "settings.json").write_text(json.dumps({"allow_synthetic_fnr": True}) + "\n")
    npr = Path(sys.executable).with_name("npr")
    registry = dataset / "registry.csv"
    subprocess.run([npr, "--home", home_dir, "registry", "import", registry], check=True)
    real = run.check_deliveries

    def keep(home: Home, pending: submission.Pending, allow: bool) -> submission.Checked:
        (work / "deliveries.pickle").write_bytes(pickle.dumps((pending.deliveries, allow)))
        return real(home, pending, allow)

    run.check_deliveries = keep
    summary = run.intake_directory(Home.resolve(home_dir), inbox)
    print(f"{len(summary.submissions)} files received into {home_dir}")


def clear(home: Home, deliveries: list) -> None:
    """Everything the checks write, removed: they then write it all again."""
    shutil.rmtree(home.root / "quality", ignore_errors=True)
    for delivery in deliveries:
        for record in (delivery.ord, delivery.ide):
            if record is not None:
                (home.feedback / record.submission_id / "XPR_ERR.xml").unlink(missing_ok=True)


def digest(home: Home, deliveries: list) -> dict[str, str]:
    """sha256 of every file the checks wrote (a marker without its catalogue hash, which is
    the checking code's own hash and changes with it)."""
    found: dict[str, str] = {}
    for path in sorted((home.root / "quality").rglob("*")):
        if path.is_file():
            data = path.read_bytes()
            if path.suffix == ".json":
                data = json.dumps({**json.loads(data), "catalogue": None}).encode()
            found[str(path.relative_to(home.root))] = hashlib.sha256(data).hexdigest()
    for delivery in deliveries:
        for record in (delivery.ord, delivery.ide):
            if record is not None:
                path = home.feedback / record.submission_id / "XPR_ERR.xml"
                found[str(path.relative_to(home.root))] = hashlib.sha256(
                    path.read_bytes()
                ).hexdigest()
    return found


def measure(
    work: Path, label: str, profile: Path | None, workers: int | None, episodes: int | None
) -> None:
    """``check_deliveries`` alone on the prepared deliveries; its CPU, the peak resident memory
    of this process and of its largest worker, and the digest."""
    deliveries, allow = pickle.loads((work / "deliveries.pickle").read_bytes())
    home = Home.resolve(work / "home")
    clear(home, deliveries)
    os.sync()  # the removal's pending work would otherwise be charged to the checks' writes
    if workers is not None:
        submission.WORKERS = workers
    if episodes is not None:
        submission.BATCH_EPISODES = episodes
    profiler = cProfile.Profile() if profile else None
    cpu, children, wall = time.process_time(), _children(), time.perf_counter()
    if profiler:
        profiler.enable()
    checked = submission.check_deliveries(home, submission.Pending(deliveries, []), allow)
    if profiler:
        profiler.disable()
        profiler.dump_stats(profile)
    record = {
        "label": label,
        "deliveries": len(deliveries),
        "outcomes": len(checked.outcomes),
        "main_cpu_s": round(time.process_time() - cpu, 2),
        "workers_cpu_s": round(_children() - children, 2),
        "wall_s": round(time.perf_counter() - wall, 2),
        "main_peak_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024,
        "worker_peak_mib": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss // 1024,
    }
    found = digest(home, deliveries)
    record["files"] = len(found)
    record["digest"] = hashlib.sha256(json.dumps(found, sort_keys=True).encode()).hexdigest()
    (work / f"digest-{label}.json").write_text(json.dumps(found, indent=0, sort_keys=True))
    print(json.dumps(record))


def _children() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    make = commands.add_parser("prepare")
    make.add_argument("dataset", type=Path)
    make.add_argument("work", type=Path)
    make.add_argument("--month", type=int, default=0, help="only this month's files (0: all)")
    check = commands.add_parser("run")
    check.add_argument("work", type=Path)
    check.add_argument("--label", default="run")
    check.add_argument("--profile", type=Path)
    check.add_argument("--workers", type=int)
    check.add_argument("--batch-episodes", type=int, help="submission.BATCH_EPISODES instead")
    args = parser.parse_args()
    if args.command == "prepare":
        prepare(args.dataset, args.work, args.month)
    else:
        measure(args.work, args.label, args.profile, args.workers, args.batch_episodes)


if __name__ == "__main__":
    main()
