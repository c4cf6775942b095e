"""A first benchmark of the daily route (issue 13): one day of N units' daily files through
``npr intake``, as an operator runs it.

    python -m benchmarks.daily_bench [--units 2000] [--day 2026-03-04] [--episodes 30]

Every unit of ``reference.representative_units(N)`` is put on the daily route and its synthetic
year (the synth's own generator, through the day's month) is rendered as that day's daily
files (the unit's events of that day, :func:`npr_pipeline.synth.events.unit_events`, written by
:func:`npr_pipeline.synth.daily.write_unit_files` as the synth's daily route does, some late,
resent or duplicated; many units send nothing on a given day). The files are cached in
``.bench/daily-<units>-<day>/``. Reported: ms of CPU per file (the intake process and its
workers), files per second of wall time, peak memory; results in
``.bench/daily-results-<timestamp>.json``. A measurement, not a gate.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict
from datetime import date, datetime
from pathlib import Path

from benchmarks.intake_bench import CACHE, machine, measure
from npr_pipeline import reference
from npr_pipeline.registry import as_text
from npr_pipeline.synth import daily
from npr_pipeline.synth.events import unit_events
from npr_pipeline.synth.generate import generate_unit_year
from npr_pipeline.synth.model import UnitInfo
from npr_pipeline.synth.run import (
    MIN_EPISODES_PER_MONTH,
    REGISTRY_COLUMNS,
    SynthOptions,
    _catchment,
    select_units,
)

SEED = 7
MIB = 2**20


def _unit_files(args: tuple[UnitInfo, float, date, Path]) -> int:
    """One unit's daily files of the day (in a worker process); how many were written."""
    unit, per_month, day, inbox = args
    valid_fag = set(reference.code_list("fagomrade"))
    year = generate_unit_year(unit, day.year, day.month, SEED, per_month, _catchment(), valid_fag)
    events = [e for e in unit_events(year, day.year, day.month, SEED) if e.moment.date() == day]
    paths, _ = daily.write_unit_files(inbox, unit, events, SEED)
    return len(paths)


def dataset(units: int, day: date, episodes: float) -> tuple[Path, Path]:
    """The cached inbox and registry (every unit on the daily route) of this scale."""
    folder = CACHE / f"daily-{units}-{day.isoformat()}-{episodes:g}"
    inbox, registry = folder / "inbox", folder / "registry.csv"
    if registry.exists():
        return inbox, registry
    inbox.mkdir(parents=True, exist_ok=True)
    chosen = select_units(
        SynthOptions(out=folder, year=day.year, through=day.month, units=units, seed=SEED)
    )
    mean = float(reference.units()["size_weight"].mean())
    tasks = []
    for row in chosen.itertuples(index=False):
        unit = UnitInfo(row.reshID, row.orgnr, row.herID, row.name, row.unit_type, row.rhf,
                        row.komnr, row.sector, row.fagomrade, float(row.size_weight))  # fmt: skip
        per_month = max(MIN_EPISODES_PER_MONTH, episodes * unit.size_weight / mean)
        tasks.append((unit, per_month, day, inbox))
    with ProcessPoolExecutor(max_workers=2) as pool:
        written = sum(pool.map(_unit_files, tasks, chunksize=8))
    frame = as_text(chosen.loc[:, list(REGISTRY_COLUMNS)])
    frame["route"] = "daily"
    frame.to_csv(registry.with_suffix(".tmp"), index=False)
    registry.with_suffix(".tmp").rename(registry)
    print(f"generated {written} daily files of {len(tasks)} units in {inbox}")
    return inbox, registry


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--units", type=int, default=2000)
    parser.add_argument("--day", type=date.fromisoformat, default=date(2026, 3, 4))
    parser.add_argument("--episodes", type=float, default=30.0)
    args = parser.parse_args(argv)
    inbox, registry = dataset(args.units, args.day, args.episodes)
    files = sorted(inbox.iterdir())
    work = CACHE / "daily-work"
    subprocess.run(["rm", "-rf", str(work)], check=True)
    work.mkdir(parents=True)
    npr = Path(sys.executable).with_name("npr")
    home = work / "home"
    subprocess.run([npr, "--home", home, "registry", "import", registry], check=True,
                   capture_output=True)  # fmt: skip
    result = measure("npr intake", "daily", [npr, "--home", home, "intake", inbox, "--json"],
                     files, True)  # fmt: skip
    doc = result.output if isinstance(result.output, dict) else {}
    figures = {
        "units": args.units,
        "day": args.day.isoformat(),
        "files": len(files),
        "bytes": sum(p.stat().st_size for p in files),
        "accepted": doc.get("accepted"),
        "rejected_by_reason": doc.get("rejected_by_reason"),
        "seconds": round(result.seconds, 2),
        "cpu_seconds": round(result.cpu_seconds, 2),
        "ms_cpu_per_file": round(1000 * result.cpu_seconds / max(1, len(files)), 1),
        "files_per_second": round(len(files) / result.seconds, 1),
        "max_rss_mib": round(result.max_rss / MIB),
        "load": round(result.load, 1),
        "returncode": result.returncode,
    }
    print(json.dumps(figures, indent=2))
    out = CACHE / f"daily-results-{datetime.now():%Y%m%dT%H%M%S}.json"
    out.write_text(json.dumps({"figures": figures, "machine": machine(),
                               "measurement": asdict(result) | {"output": None}}, indent=2,
                              default=str))  # fmt: skip
    subprocess.run(["rm", "-rf", str(work)], check=True)


if __name__ == "__main__":
    main()
