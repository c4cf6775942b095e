"""A national day through the daily route (issue 13, "Speed"): one day of N units' daily files
through ``npr intake``, as an operator runs it, against the validating floor.

    python -m benchmarks.daily_bench [--units 2000] [--day 2026-03-04] [--episodes 30]
                                     [--history-days 2] [--min-episodes 12] [--keep-home]

The registry is the synth's (:func:`npr_pipeline.synth.run.select_units`): the bundled units
and, above their ~2,000, ``npr synth --private-units`` providers up to ``--units`` (most tiny,
some idle), every one on the daily route. Each unit's synthetic year (the synth's generator and
size distribution, ``npr_pipeline.synth.run._tasks``) is rendered as the daily files of the
day and of the ``--history-days`` days before it by :func:`npr_pipeline.synth.daily.
write_unit_files`, as the synth's daily route writes them (lopenr rising across the days, some
files late, resent or duplicated), and each file goes to the inbox of the day it is delivered.
The files are cached in ``.bench/daily-<units>-<day>-<episodes>-h<days>[-m<min>]/``.

``--min-episodes`` raises the floor of a reporting unit's episodes per month (the synth's is
``MIN_EPISODES_PER_MONTH``, 2). The synth's private providers nearly all sit on that floor (their
size weight is a hundredth of the bundled mean), so they send ~0.11 files a day each and
``--episodes`` hardly moves the day's file count (150 gives 0.14) while it multiplies the large
units' work. The issue's estimate of a national day (16 min at 26 ms per file) supposes ~37,000
files from 65,000 units, "most units send a few records, some none": a floor of 12 episodes a
month gives ~0.57 files per unit (~37,000; calibrated on a sample of 1,000 of the 65,000 units:
10 gives 0.49, 20 gives 0.86), idle providers still send nothing.

Two figures, each ``npr intake INBOX --json`` as a timed child process:

- ``fresh``: the day into a HOME that holds only the registry;
- ``history``: the day into a HOME that has received the earlier days first (untimed), so the
  findings query reads a real event history.

Reported per figure: files, MB, wall, CPU (the intake process and its workers), files/s, ms CPU
per file, peak memory (ru_maxrss of the largest process and the sampled PSS of the process
tree), the 1-minute load average; and, in the same run, ``xmllint --noout --stream --schema``
over the same files with a wrapper schema that validates every daily type's Melding inside its
MsgHead (CPU seconds and the ratio intake / xmllint). Results in
``.bench/daily-results-<timestamp>.json``. Targets (10 minutes wall, 1 GiB) are reported PASS or
MISS; the exit code is 0 either way. Run it under ``flock /tmp/npr-cpu.lock``. ``--keep-home``
leaves the history HOME in ``.bench/daily-work/history`` (to profile an intake on it).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
from concurrent.futures import ProcessPoolExecutor
from datetime import date, datetime, timedelta
from pathlib import Path

from benchmarks.intake_bench import CACHE, MB, Measurement, machine, measure, require_tools
from npr_pipeline import reference
from npr_pipeline.messages import all_types
from npr_pipeline.registry import as_text
from npr_pipeline.schemas import MSGHEAD_NS
from npr_pipeline.synth import daily
from npr_pipeline.synth.events import unit_events
from npr_pipeline.synth.generate import generate_unit_year
from npr_pipeline.synth.model import UnitInfo
from npr_pipeline.synth.run import REGISTRY_COLUMNS, SynthOptions, _catchment, _tasks, select_units

SEED = 7
MIB = 2**20
TARGET_SECONDS = 600.0  # "in at most 10 minutes on this 2-core machine"
TARGET_PEAK = 2**30  # "peak memory under 1 GiB"
XMLLINT_FILES = 2_000  # paths per xmllint process (argv length); CPU is summed over them


def _unit_files(args: tuple[UnitInfo, float, date, int, Path]) -> int:
    """One unit's daily files of the day and the days before (in a worker process), each moved
    to the inbox of the day it is delivered; files delivered after the day are dropped."""
    unit, per_month, day, history, root = args
    if per_month <= 0:  # an idle provider: nothing to report this year
        return 0
    first = day - timedelta(days=history)
    valid_fag = set(reference.code_list("fagomrade"))
    year = generate_unit_year(unit, day.year, day.month, SEED, per_month, _catchment(), valid_fag)
    events = [e for e in unit_events(year, day.year, day.month, SEED)
              if first <= e.moment.date() <= day]  # fmt: skip
    scratch = root / "scratch" / unit.resh
    scratch.mkdir(parents=True, exist_ok=True)
    paths, _ = daily.write_unit_files(scratch, unit, events, SEED)
    kept = 0
    for path in paths:
        delivered = datetime.strptime(path.name.split("_")[1], "%Y%m%dT%H%M%S").date()
        if delivered <= day:
            os.replace(path, _inbox(root, delivered) / path.name)
            kept += delivered == day
    shutil.rmtree(scratch)
    return kept


def _floored(per_month: float, floor: float | None) -> float:
    """A unit's episodes per month with the bench's floor; an idle unit (0) stays idle."""
    return max(per_month, floor) if per_month > 0 and floor is not None else per_month


def _inbox(root: Path, day: date) -> Path:
    return root / f"inbox-{day.isoformat()}"


def dataset(
    units: int, day: date, episodes: float, history: int, min_episodes: float | None = None
) -> tuple[Path, Path]:
    """The cached folder (an inbox per day) and registry (every unit daily) of this scale;
    ``min_episodes`` the floor of a reporting (not idle) unit's episodes per month."""
    floor = f"-m{min_episodes:g}" if min_episodes is not None else ""
    folder = CACHE / f"daily-{units}-{day.isoformat()}-{episodes:g}-h{history}{floor}"
    registry = folder / "registry.csv"
    if registry.exists():
        return folder, registry
    shutil.rmtree(folder, ignore_errors=True)
    for k in range(history + 1):
        _inbox(folder, day - timedelta(days=k)).mkdir(parents=True)
    bundled = len(reference.representative_units(10**9, seed=SEED))
    options = SynthOptions(
        out=folder, year=day.year, through=day.month, units=min(units, bundled), seed=SEED,
        episodes_per_unit_month=episodes, route="daily", private_units=max(0, units - bundled),
    )  # fmt: skip
    chosen = select_units(options)
    work = [
        (t.unit, _floored(t.episodes_per_month, min_episodes), day, history, folder)
        for t in _tasks(chosen, options)
    ]
    with ProcessPoolExecutor(max_workers=2) as pool:
        written = sum(pool.map(_unit_files, work, chunksize=64))
    shutil.rmtree(folder / "scratch", ignore_errors=True)
    frame = as_text(chosen.loc[:, list(REGISTRY_COLUMNS)])
    frame["financing"] = frame["financing"].where(frame["financing"] == "private", "public")
    frame.to_csv(registry.with_suffix(".tmp"), index=False)
    registry.with_suffix(".tmp").rename(registry)
    print(f"generated {written} daily files of {len(work)} units for {day} in {folder}")
    return folder, registry


def wrapper_schema(folder: Path) -> Path:
    """An XSD for ``xmllint --schema`` that validates a whole daily file: the MsgHead element
    (its header laxly: no MsgHead XSD is bundled) whose content, the Melding, is validated
    strictly by its own type's schema (every daily and report type is imported)."""
    imports = "".join(
        f'<xs:import namespace="{m.namespace}" schemaLocation="{m.schema_path.resolve()}"/>'
        for m in all_types()
    )
    text = (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f'<xs:schema xmlns:xs="http://www.w3.org/2001/XMLSchema" targetNamespace="{MSGHEAD_NS}" '
        f'elementFormDefault="qualified">{imports}'
        '<xs:element name="MsgHead"><xs:complexType><xs:sequence>'
        '<xs:any namespace="##any" processContents="lax" minOccurs="0" maxOccurs="unbounded"/>'
        "</xs:sequence></xs:complexType></xs:element></xs:schema>\n"
    )
    path = folder / "daily-wrapper.xsd"
    path.write_text(text, encoding="utf-8")
    return path


def xmllint_floor(files: list[Path], schema: Path, work: Path) -> Measurement:
    """``xmllint --noout --stream --schema`` over every file, ``XMLLINT_FILES`` paths per
    process (xargs; GNU time counts the CPU of the whole tree)."""
    listing = work / "xmllint-files.txt"
    listing.write_text("".join(f"{p}\n" for p in files))
    argv = ["xargs", "-n", str(XMLLINT_FILES), "-a", listing,
            "xmllint", "--noout", "--stream", "--schema", schema]  # fmt: skip
    return measure("xmllint --stream --schema", "daily", argv, files, False)


def _intake(home: Path, inbox: Path, case: str) -> Measurement:
    npr = Path(sys.executable).with_name("npr")
    files = sorted(inbox.iterdir())
    return measure("npr intake", case, [npr, "--home", home, "intake", inbox, "--json"],
                   files, True)  # fmt: skip


def _home(work: Path, name: str, registry: Path) -> Path:
    npr = Path(sys.executable).with_name("npr")
    home = work / name
    subprocess.run([npr, "--home", home, "registry", "import", registry], check=True,
                   capture_output=True)  # fmt: skip
    return home


def figures(result: Measurement, floor: Measurement | None) -> dict[str, object]:
    """One timed intake's figures, with its ratio to the floor's CPU."""
    doc = result.output if isinstance(result.output, dict) else {}
    files = max(1, result.files)
    return {
        "case": result.case,
        "files": result.files,
        "MB": round(result.bytes / MB, 1),
        "accepted": doc.get("accepted"),
        "rejected": doc.get("rejected"),
        "duplicates": doc.get("duplicates"),
        "rejected_by_reason": doc.get("rejected_by_reason"),
        "seconds": round(result.seconds, 1),
        "cpu_seconds": round(result.cpu_seconds, 1),
        "files_per_second": round(result.files / result.seconds, 1) if result.seconds else None,
        "ms_cpu_per_file": round(1000 * result.cpu_seconds / files, 2),
        "max_rss_mib": round(result.max_rss / MIB),
        "tree_pss_mib": round(result.tree_pss / MIB),
        "cpu_vs_xmllint": round(result.cpu_seconds / floor.cpu_seconds, 1)
        if floor and floor.cpu_seconds
        else None,
        "load": round(result.load, 2),
        "returncode": result.returncode,
        "note": result.note,
        "target_seconds": "PASS" if result.ok and result.seconds <= TARGET_SECONDS else "MISS",
        "target_memory": "PASS" if result.peak < TARGET_PEAK else "MISS",
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--units", type=int, default=2000)
    parser.add_argument("--day", type=date.fromisoformat, default=date(2026, 3, 4))
    parser.add_argument("--episodes", type=float, default=30.0)
    parser.add_argument("--history-days", type=int, default=2)
    parser.add_argument("--min-episodes", type=float, default=None)
    parser.add_argument("--keep-home", action="store_true")
    args = parser.parse_args(argv)
    require_tools()
    folder, registry = dataset(
        args.units, args.day, args.episodes, args.history_days, args.min_episodes
    )
    inbox = _inbox(folder, args.day)
    files = sorted(inbox.iterdir())
    work = CACHE / "daily-work"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    results = [_intake(_home(work, "fresh", registry), inbox, "fresh")]
    print(json.dumps(figures(results[0], None)), flush=True)  # a long run's first figure
    shutil.rmtree(work / "fresh")
    floor = xmllint_floor(files, wrapper_schema(work), work)
    print(f"xmllint: {floor.seconds:.1f} s wall, {floor.cpu_seconds:.1f} s CPU", flush=True)
    if args.history_days:
        home = _home(work, "history", registry)
        for k in range(args.history_days, 0, -1):
            earlier = _intake(home, _inbox(folder, args.day - timedelta(days=k)), "setup")
            print(f"history: {earlier.files} files of {args.day - timedelta(days=k)} received "
                  f"({earlier.seconds:.0f} s)", flush=True)  # fmt: skip
        results.append(_intake(home, inbox, "history"))
    report = {
        "units": args.units,
        "day": args.day.isoformat(),
        "episodes": args.episodes,
        "history_days": args.history_days,
        "min_episodes": args.min_episodes,
        "xmllint": {
            "seconds": round(floor.seconds, 1),
            "cpu_seconds": round(floor.cpu_seconds, 1),
            "returncode": floor.returncode,
            "load": round(floor.load, 2),
            "note": floor.note,
        },  # fmt: skip
        "intake": [figures(r, floor) for r in results],
    }
    print(json.dumps(report, indent=2))
    out = CACHE / f"daily-results-{datetime.now():%Y%m%dT%H%M%S}.json"
    out.write_text(json.dumps(report | {"machine": machine()}, indent=2, default=str))
    if not args.keep_home:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
