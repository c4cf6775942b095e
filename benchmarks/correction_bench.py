"""A correction back in time through production (issue 13): an ``M`` for a January contact sent
by the daily route in late April, on top of a year received mostly by the monthly route, and
the seconds until every affected period has a new delivery version.

    python -m benchmarks.correction_bench [--units 40] [--daily-share 0.1] [--episodes 30]
    python -m benchmarks.correction_bench --national [--daily-share 0.05] [--profile]
    python -m benchmarks.correction_bench --national --build-only   # the set alone, no runs
    python -m benchmarks.correction_bench --national --reruns-only  # the reruns alone

``npr synth --route mixed`` of the year through April, intake once per delivery month, then
with ``npr`` as an operator runs it: ``npr run`` of every affected period (the first runs),
the correction through ``npr intake``, and ``npr run`` of each affected period again, each
timed on its own (wall and CPU of the command, and the Dagster run's step timings: where the
time goes). ``--national`` is the issue's case: every active unit of the synth (the national
April set, ~1 GB of monthly files in April alone), ``--daily-share`` of them daily; the set is
received once into ``.bench/correction-national`` and each run starts from a copy of that
HOME. A full national run saves the HOME after the first runs and the correction's intake into
``.bench/correction-national/corrected``; ``--reruns-only`` starts from a copy of that (the
reruns and the year alone: minutes, not the first runs' quarter of an hour). ``--profile``
writes a cProfile of each rerun beside the results (the figures then carry the profiler's
overhead). Results in ``.bench/correction-results-<timestamp>.json``. A
measurement, not a gate; the issue's target is at most 30 s per period on the national set.

The affected periods are those whose statistical window includes January: 2026-01, 2026-T1
and the year 2026. A month's window is the month alone (2026-02..04 read January's rows as
year-to-date coverage but publish nothing of January), so they are not affected; the year is
affected but refused until every unit's data reach December (its gate is closed in April),
which the bench shows by running it once after the correction.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path

from benchmarks.intake_bench import CACHE, machine
from npr_pipeline.home import Home
from npr_pipeline.intake.run import intake_directory
from npr_pipeline.registry import current_registry, import_registry
from npr_pipeline.settings import TEST, record_environment
from npr_pipeline.store.ledger import load_ledger
from npr_pipeline.synth.correction import write_correction
from npr_pipeline.synth.delivery import MONTHLY_NAME, split_by_delivery_month
from npr_pipeline.synth.run import SynthOptions, run_synth

PERIODS = ("2026-01", "2026-T1")
"""The affected periods a run in April can produce (the module docstring says why these)."""
YEAR = "2026"
"""Affected too, but refused in April: its gate waits for every unit's December."""
EXIT_REFUSED = 3
NATIONAL = CACHE / "correction-national"
"""The national April set, received once (``received.json`` marks it complete) and reused."""


def receive(root: Path, options: SynthOptions, monthly_last_only: bool = False) -> Home:
    """The synth's year through April under ``root/synth``, received into ``root/home`` once per
    delivery month (the order the register receives it in). ``monthly_last_only``: of the
    monthly units only their last month's files (cumulative from January, they are what every
    period through April reads; the earlier months' files would only lengthen the ledger and
    the build, by ~1.4 GB of XML nationally)."""
    shutil.rmtree(root, ignore_errors=True)
    run_synth(options)
    home = Home(root=root / "home").ensure()
    record_environment(home, TEST, "correction benchmark")
    import_registry(home, options.out / "registry.csv")
    for inbox in split_by_delivery_month(options.out / "inbox", root):
        for path in inbox.iterdir() if monthly_last_only else ():
            monthly = MONTHLY_NAME.fullmatch(path.name)
            if monthly and int(monthly[3]) != options.through:
                path.unlink()
        summary = intake_directory(home, inbox)
        print(f"  {datetime.now():%H:%M:%S} {inbox.name}: {summary.seconds:.0f} s", flush=True)
        shutil.rmtree(inbox)  # the archive keeps every file; the copy would double the disk
    return home


def national_received(daily_share: float, episodes: float, seed: int) -> Path:
    """The national April set (every active unit, ``daily_share`` of them daily), received;
    built on first use into ``.bench/correction-national``, then reused as it is."""
    marker = NATIONAL / "received.json"
    if not marker.exists():
        started = time.perf_counter()
        options = SynthOptions(out=NATIONAL / "synth", year=2026, through=4, seed=seed,
                               episodes_per_unit_month=episodes, route="mixed",
                               daily_share=daily_share)  # fmt: skip
        receive(NATIONAL, options, monthly_last_only=True)
        built = {"daily_share": daily_share, "episodes_per_unit_month": episodes, "seed": seed}
        marker.write_text(json.dumps(built | {"seconds": time.perf_counter() - started}))
    return NATIONAL


def npr(home: Path, *args: str | Path, profile: Path | None = None) -> dict[str, object]:
    """Run ``npr --home HOME ARGS --json``; its wall and CPU seconds (the child's user + system,
    imports included), the 1-minute load when it started, its exit code and JSON answer."""
    command = [Path(sys.executable).with_name("npr"), "--home", home, *args, "--json"]
    if profile is not None:
        command = [sys.executable, "-m", "cProfile", "-o", profile, *command]
    load = os.getloadavg()[0]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime
    if done.returncode not in (0, EXIT_REFUSED):
        raise SystemExit(f"npr {' '.join(map(str, args))} failed:\n{done.stderr[-3000:]}")
    answer = json.loads(done.stdout) if done.stdout.strip().startswith("{") else {}
    return {"wall_s": wall, "cpu_s": cpu, "load": load, "exit": done.returncode} | answer


def step_seconds(home: Path, run_id: str) -> dict[str, float]:
    """Per Dagster step of the run (an asset, or a multi-asset step), its seconds."""
    from dagster import DagsterInstance

    with DagsterInstance.from_config(str(home / "dagster")) as instance:
        stats = instance.get_run_step_stats(run_id)
    return {s.step_key: round(s.end_time - s.start_time, 2) for s in stats if s.end_time}


def run_period(home: Path, period: str, profile: Path | None = None) -> dict[str, object]:
    """``npr run`` of one period: its figures, the steps' seconds and the versions written."""
    answer = npr(home, "run", "--period", period, profile=profile)
    if answer["exit"] != 0 or len(answer.get("deliveries", [])) != 4:
        raise SystemExit(f"{period}: the run delivered nothing: {answer.get('gates')}")
    steps = step_seconds(home, str(answer["run_id"]))
    return {
        "wall_s": answer["wall_s"], "cpu_s": answer["cpu_s"], "load": answer["load"],
        "outside_steps_s": answer["wall_s"] - sum(steps.values()), "steps_s": steps,
        "versions": {d["step"]: d["version"] for d in answer["deliveries"]},
    }  # fmt: skip


def working_home(home: Path, work: Path) -> Path:
    """A fresh ``cp -a`` of ``home`` into ``work/home`` for the runs: the national HOMEs stay as
    they were, for the next run."""
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir()
    subprocess.run(["cp", "-a", home, work / "home"], check=True)
    return work / "home"


def corrected(national: Path, args: argparse.Namespace) -> tuple[Path, dict[str, object]]:
    """The national HOME after the first runs and the correction's intake, and their figures:
    saved by a full run into ``national/corrected`` (``--reruns-only`` starts from a copy of
    it), or made now (the first runs, the correction) and saved."""
    saved = national / "corrected"
    if args.reruns_only:
        if not (saved / "corrected.json").exists():
            raise SystemExit(f"no {saved}: run the bench with --national once first")
        home_dir = working_home(saved / "home", national / "work")
        return home_dir, json.loads((saved / "corrected.json").read_text())
    home_dir = working_home(national / "home", national / "work")
    state = first_runs_and_correction(national, home_dir)
    shutil.rmtree(saved, ignore_errors=True)
    saved.mkdir()
    subprocess.run(["cp", "-a", home_dir, saved / "home"], check=True)
    (saved / "corrected.json").write_text(json.dumps(state, default=str))
    return home_dir, state


def first_runs_and_correction(root: Path, home_dir: Path) -> dict[str, object]:
    """``npr run`` of each affected period, then the correction through ``npr intake``."""
    first = {p: run_period(home_dir, p) for p in PERIODS}
    home = Home(root=home_dir)
    late = home_dir.parent / "late"
    fix = write_correction(root / "synth" / "inbox", "2026-01", datetime(2026, 4, 20, 23, 30),
                           current_registry(home), load_ledger(home), late)  # fmt: skip
    received = npr(home_dir, "intake", fix.path.parent)
    correction = {"unit": fix.unit, "contact": fix.contact, "before": fix.before,
                  "after": fix.after, "intake": received}  # fmt: skip
    return {"first_run": first, "correction": correction}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--national", action="store_true", help="every active unit (~1 GB April)")
    parser.add_argument("--units", type=int, default=40, help="without --national")
    parser.add_argument("--daily-share", type=float, default=None, help="0.1, national 0.05")
    parser.add_argument("--episodes", type=float, default=None, help="30, national 300")
    parser.add_argument("--profile", action="store_true", help="cProfile each rerun")
    parser.add_argument(
        "--build-only", action="store_true", help="with --national: build the set, run nothing"
    )
    parser.add_argument(
        "--reruns-only",
        action="store_true",
        help="with --national: the reruns alone, from the state a full national run saved",
    )
    args = parser.parse_args()
    share = args.daily_share if args.daily_share is not None else (0.05 if args.national else 0.1)
    episodes = args.episodes if args.episodes is not None else (300 if args.national else 30)
    stamp = f"{datetime.now():%Y%m%dT%H%M%S}"
    if args.national:
        root = national_received(share, episodes, seed=1)
        if args.build_only:
            print(f"the national April set is received in {root}")
            return
        home_dir, state = corrected(root, args)
    else:
        root = CACHE / f"correction-{args.units}"
        receive(root, SynthOptions(out=root / "synth", year=2026, through=4, units=args.units,
                                   seed=3, episodes_per_unit_month=episodes, route="mixed",
                                   daily_share=share))  # fmt: skip
        home_dir = root / "home"
        state = first_runs_and_correction(root, home_dir)
    first = state["first_run"]
    profiles = {
        p: CACHE / f"correction-{stamp}-{p}.prof" if args.profile else None for p in PERIODS
    }
    again = {p: run_period(home_dir, p, profiles[p]) for p in PERIODS}
    for period in PERIODS:
        versions = zip(
            first[period]["versions"].values(), again[period]["versions"].values(), strict=True
        )
        if not all(after > before for before, after in versions):
            raise SystemExit(f"{period}: the rerun wrote no new version of every delivery")
    year = npr(home_dir, "run", "--period", YEAR)
    result = {
        "national": args.national,
        "reruns_only": args.reruns_only,
        "units": None if args.national else args.units,
        "daily_share": share,
        "episodes_per_unit_month": episodes,
        "correction": state["correction"],
        "first_run": first,
        "after_correction": again,
        "year": {"exit": year["exit"], "wall_s": year["wall_s"], "gates": year.get("gates")},
        "profiles": {p: str(f) for p, f in profiles.items() if f},
        "machine": machine(),
    }
    out = CACHE / f"correction-results-{stamp}.json"
    out.write_text(json.dumps(result, indent=2, default=str))
    for period in PERIODS:
        runs = [("after the correction", again[period])]
        if not args.reruns_only:
            runs.insert(0, ("first run", first[period]))
        for name, run in runs:
            steps = ", ".join(f"{k} {v:.1f}" for k, v in run["steps_s"].items())
            print(f"{period} {name}: {run['wall_s']:.1f} s wall, {run['cpu_s']:.1f} s CPU, "
                  f"load {run['load']:.1f}; outside the steps {run['outside_steps_s']:.1f}; "
                  f"{steps}")  # fmt: skip
    print(f"correction intake {state['correction']['intake']['wall_s']:.1f} s wall; {YEAR}: exit "
          f"{year['exit']} (refused: its gate waits for December); {out}")  # fmt: skip


if __name__ == "__main__":
    main()
