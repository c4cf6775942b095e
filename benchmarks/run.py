"""``make bench``: intake against xmllint --stream and pandas.read_xml, in one run, same files.

    python -m benchmarks.run [--units 200] [--through 2026-04] [--episodes 300]
                             [--only xmllint --only iterparse --only pandas --only intake]

The scale can also come from ``BENCH_UNITS``, ``BENCH_THROUGH`` and ``BENCH_EPISODES``. The
generated files are cached in ``.bench/`` by scale; results go to
``.bench/results-<timestamp>.json``. Targets are reported PASS or MISS, and the exit code is 0
either way: this is a measurement, not a gate. MB means 10^6 bytes; MiB and GiB are binary.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from datetime import datetime
from pathlib import Path

from rich.console import Console
from rich.table import Table

from benchmarks.intake_bench import (
    CACHE,
    GIB,
    MB,
    PANDAS_SAMPLE_BYTES,
    Dataset,
    Measurement,
    Scale,
    ensure_dataset,
    intake,
    iterparse,
    machine,
    pandas,
    pandas_sample,
    parse_with_month,
    require_tools,
    xmllint,
)

CONTENDERS = ("xmllint", "iterparse", "pandas", "intake")
MIB = 1 << 20
TARGET_VS_XMLLINT = 0.5
TARGET_VS_PANDAS = 5.0
console = Console(width=None if sys.stdout.isatty() else 180)  # a log keeps whole rows


def _args(argv: Sequence[str] | None) -> argparse.Namespace:
    env = os.environ.get
    parser = argparse.ArgumentParser(prog="python -m benchmarks.run", description=__doc__)
    parser.add_argument("--units", type=int, default=int(env("BENCH_UNITS", "200")))
    parser.add_argument("--through", default=env("BENCH_THROUGH", "2026-04"), help="YYYY-MM")
    parser.add_argument("--episodes", type=float, default=float(env("BENCH_EPISODES", "300")))
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--only", action="append", choices=CONTENDERS, help="Run only these (repeatable)."
    )
    parser.add_argument(
        "--pandas-cap-mb",
        type=int,
        default=PANDAS_SAMPLE_BYTES // MB,
        help="Bytes of ord files pandas.read_xml reads in the inbox case.",
    )
    return parse_with_month(parser, argv)


def main(argv: Sequence[str] | None = None) -> None:
    args = _args(argv)
    require_tools()
    only = set(args.only or CONTENDERS)
    info = machine()
    _print_machine(info)
    scale = Scale(args.units, args.month, args.episodes, args.seed)
    console.print(f"data set {scale.key} in {CACHE} (generated once, then reused) ...")
    dataset = ensure_dataset(scale)
    files, largest = dataset.files, dataset.largest_ord
    total = sum(p.stat().st_size for p in files)
    if dataset.generate_seconds is not None:
        console.print(f"  generated in {dataset.generate_seconds:.0f} s")
    console.print(
        f"  {len(files)} files, {total / MB:.1f} MB; largest: {largest.name} "
        f"({largest.stat().st_size / MB:.1f} MB)"
    )
    _warm(files)
    sample = pandas_sample(dataset.ord_files, args.pandas_cap_mb * MB, args.seed)
    CACHE.mkdir(exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="work-", dir=CACHE))
    try:
        results = _measure_all(dataset, only, sample, largest, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    _print_results(results)
    targets = _targets(results)
    _print_targets(targets)
    _write_json(info, dataset, total, largest, args.pandas_cap_mb, results, targets)


def _warm(files: Sequence[Path]) -> None:
    """Read every file once so all contenders read from the page cache, not the first one."""
    for path in files:
        with open(path, "rb") as fh:
            while fh.read(1 << 24):
                pass


def _measure_all(
    dataset: Dataset, only: set[str], sample: list[Path], largest: Path, work: Path
) -> list[Measurement]:
    """Each contender on the whole inbox (pandas on its sample), then on the largest file."""
    plan: list[tuple[str, str, Callable[[], Measurement]]] = [
        ("xmllint", "inbox", lambda: xmllint("inbox", dataset.files)),
        ("iterparse", "inbox", lambda: iterparse("inbox", dataset.files, work)),
        ("pandas", "pandas sample", lambda: pandas("pandas sample", sample, work)),
        ("intake", "inbox", lambda: intake("inbox", dataset, dataset.files, work)),
        ("xmllint", "largest file", lambda: xmllint("largest file", [largest])),
        ("iterparse", "largest file", lambda: iterparse("largest file", [largest], work)),
        ("pandas", "largest file", lambda: pandas("largest file", [largest], work)),
        ("intake", "largest file", lambda: intake("largest file", dataset, [largest], work)),
    ]
    results = []
    for contender, case, run in plan:
        if contender not in only:
            continue
        console.print(f"  measuring {contender} on {case} ...")
        started = time.perf_counter()
        result = run()
        console.print(f"    {time.perf_counter() - started:.1f} s {result.note}")
        results.append(result)
    return results


def _print_machine(info: dict[str, object]) -> None:
    table = Table(title="machine", show_header=False)
    for key, value in info.items():
        table.add_row(key, str(value))
    console.print(table)


def _print_results(results: list[Measurement]) -> None:
    table = Table(title="intake benchmark (MB = 10^6 bytes)")
    columns = (
        "contender", "case", "files", "MB", "s", "MB/s", "MB/cpu-s", "max RSS MiB",
        "tree PSS MiB", "load",
    )  # fmt: skip
    for index, column in enumerate(columns):
        table.add_column(column, justify="left" if index < 2 else "right")
    table.add_column("note")
    for r in results:
        rate = r.mb_per_s
        note = r.note or _summary(r.output)
        table.add_row(
            r.name,
            r.case,
            str(r.files),
            f"{r.bytes / MB:.1f}",
            f"{r.seconds:.1f}" if r.seconds else "-",
            f"{rate:.1f}" if rate else "-",
            f"{r.mb_per_cpu_s:.1f}" if r.mb_per_cpu_s else "-",
            f"{r.max_rss / MIB:.0f}" if r.max_rss else "-",
            f"{r.tree_pss / MIB:.0f}" if r.tree_pss else "-",
            f"{r.load:.1f}",
            note,
        )
    console.print(table)
    console.print(
        "max RSS: ru_maxrss from /usr/bin/time, the largest single process of that child's tree; "
        "tree PSS: sampled every 0.1 s, the sum over the main process and its workers. "
        "MB/cpu-s: bytes per CPU second (user + system) of the tree. load: the 1-minute load "
        "average at the start; above 0.5 others were using the cores and wall times suffer."
    )


def _summary(output: dict[str, object]) -> str:
    keys = ("accepted", "rejected", "episodes", "patients")
    return ", ".join(f"{k} {output[k]}" for k in keys if k in output)


def _find(results: list[Measurement], name: str, case: str) -> Measurement | None:
    return next((r for r in results if r.name.startswith(name) and r.case == case), None)


def _targets(results: list[Measurement]) -> list[dict[str, object]]:
    """The issue's three targets, each with its figure and PASS, MISS or n/a (not measured)."""
    ours = _find(results, "npr intake", "inbox")
    lint = _find(results, "xmllint", "inbox")
    naive = _find(results, "pandas", "pandas sample")
    ours_rate = ours.mb_per_s if ours else None

    def ratio(other: Measurement | None) -> float | None:
        rate = other.mb_per_s if other else None
        return ours_rate / rate if ours_rate and rate else None

    intakes = [r for r in results if r.name == "npr intake" and r.ok]
    peak = max((r.peak for r in intakes), default=None)
    rows = [
        ("intake / xmllint --stream (MB/s)", ratio(lint), TARGET_VS_XMLLINT, ">="),
        ("intake / pandas.read_xml (MB/s)", ratio(naive), TARGET_VS_PANDAS, ">="),
        ("intake peak memory (GiB)", peak / GIB if peak else None, 1.0, "<"),
    ]
    targets = []
    for name, value, limit, op in rows:
        if value is None:
            verdict = "n/a"
        else:
            verdict = "PASS" if (value >= limit if op == ">=" else value < limit) else "MISS"
        targets.append(
            {"target": name, "value": value, "limit": f"{op} {limit}", "verdict": verdict}
        )
    return targets


def _print_targets(targets: list[dict[str, object]]) -> None:
    table = Table(title="targets (a MISS is a finding, not a failure: exit code stays 0)")
    for column in ("target", "measured", "needed", "verdict"):
        table.add_column(column)
    colours = {"PASS": "green", "MISS": "red", "n/a": "yellow"}
    for t in targets:
        value = t["value"]
        shown = f"{value:.3f}" if isinstance(value, float) else "-"
        verdict = str(t["verdict"])
        table.add_row(str(t["target"]), shown, str(t["limit"]), f"[{colours[verdict]}]{verdict}")
    console.print(table)
    console.print(
        "peak memory: the larger of max RSS and tree PSS over both intake cases; "
        "pandas' rate is from its sample, intake's from the whole inbox."
    )


def _write_json(
    info: dict[str, object],
    dataset: Dataset,
    total: int,
    largest: Path,
    pandas_cap_mb: int,
    results: list[Measurement],
    targets: list[dict[str, object]],
) -> None:
    stamp = datetime.now().strftime("%Y%m%dT%H%M%S")
    path = CACHE / f"results-{stamp}.json"
    doc = {
        "machine": info,
        "scale": dataset.scale.__dict__ | {"key": dataset.scale.key},
        "data": {
            "files": len(dataset.files),
            "bytes": total,
            "largest_file": largest.name,
            "largest_bytes": largest.stat().st_size,
            "pandas_cap_bytes": pandas_cap_mb * MB,
        },
        "measurements": [r.as_json() for r in results],
        "targets": targets,
    }
    path.write_text(json.dumps(doc, indent=2, default=str) + "\n")
    console.print(f"results: {path}")


if __name__ == "__main__":
    main()
