"""A correction back in time through production (issue 13): an ``M`` for a January contact sent
by the daily route in late April, on top of a year received mostly by the monthly route, and
the seconds until every affected period (2026-01 and 2026-T1) has a new delivery version.

    python -m benchmarks.correction_bench [--units 40] [--daily-share 0.1] [--episodes 30]

``npr synth --route mixed`` of the year through April, intake once per delivery month, a first
run of both periods, then the correction through intake and a second run of each period timed
on its own (gates, snapshot with the daily units' fold, GX suites, the four steps): what an
operator waits for. Results in ``.bench/correction-results-<timestamp>.json``. A measurement,
not a gate; the issue's target is at most 30 s per period on the national April set.
"""

from __future__ import annotations

import argparse
import json
import shutil
import time
from datetime import datetime

from benchmarks.intake_bench import CACHE, machine
from npr_pipeline.home import Home
from npr_pipeline.intake.run import intake_directory
from npr_pipeline.periods import Period
from npr_pipeline.production import STEPS
from npr_pipeline.production.input_checks import check_period
from npr_pipeline.production.run import produce
from npr_pipeline.registry import current_registry, import_registry
from npr_pipeline.settings import TEST, record_environment
from npr_pipeline.store.ledger import load_ledger
from npr_pipeline.synth.correction import write_correction
from npr_pipeline.synth.delivery import split_by_delivery_month
from npr_pipeline.synth.run import SynthOptions, run_synth

PERIODS = ("2026-01", "2026-T1")


def run_period(home: Home, period: str, run_id: str) -> float:
    """Seconds for one period's checks and every step (what ``npr run`` does in its assets)."""
    started = time.perf_counter()
    checks = check_period(home, Period.parse(period), run_id, 0.05)
    if not checks.passed or any(g["gate"] != "open" for g in checks.gates):
        raise SystemExit(f"{period}: the checks or a gate refused the run: {checks.gates}")
    for step in STEPS:
        produce(home, Period.parse(period), step, run_id)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--units", type=int, default=40)
    parser.add_argument("--daily-share", type=float, default=0.1)
    parser.add_argument("--episodes", type=float, default=30.0)
    args = parser.parse_args()
    root = CACHE / f"correction-{args.units}"
    shutil.rmtree(root, ignore_errors=True)
    synth = root / "synth"
    run_synth(SynthOptions(out=synth, year=2026, through=4, units=args.units, seed=3,
                           episodes_per_unit_month=args.episodes, route="mixed",
                           daily_share=args.daily_share))  # fmt: skip
    home = Home(root=root / "home").ensure()
    record_environment(home, TEST, "correction benchmark")
    import_registry(home, synth / "registry.csv")
    for inbox in split_by_delivery_month(synth / "inbox", root):
        intake_directory(home, inbox)
    first = {p: run_period(home, p, "first") for p in PERIODS}
    started = time.perf_counter()
    fix = write_correction(synth / "inbox", "2026-01", datetime(2026, 4, 20, 23, 30),
                           current_registry(home), load_ledger(home), root / "late")  # fmt: skip
    intake_directory(home, fix.path.parent)
    received = time.perf_counter() - started
    again = {p: run_period(home, p, "correction") for p in PERIODS}
    result = {
        "units": args.units,
        "daily_share": args.daily_share,
        "episodes_per_unit_month": args.episodes,
        "correction": {"unit": fix.unit, "contact": fix.contact, "intake_seconds": received},
        "first_run_seconds": first,
        "seconds_per_period_after_correction": again,
        "machine": machine(),
    }
    out = CACHE / f"correction-results-{datetime.now():%Y%m%dT%H%M%S}.json"
    out.write_text(json.dumps(result, indent=2))
    for period in PERIODS:
        print(
            f"{period}: first run {first[period]:.1f} s, after the correction {again[period]:.1f} s"
        )
    print(f"correction intake {received:.1f} s; {out}")


if __name__ == "__main__":
    main()
