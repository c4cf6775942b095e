"""The contenders of the intake benchmark, and the machinery that measures them fairly.

Every contender runs in its own child process, so its wall time and its peak memory are its
own and not the harness's. Peak memory is taken two ways because they answer different
questions: ``ru_maxrss`` as GNU ``/usr/bin/time`` reports it (the kernel's exact high-water
mark of the largest single process of the contender's tree) and the
sampled sum of PSS over the whole process tree (what intake's main process and its pool
workers occupy together; PSS, not RSS, so pages shared after ``fork`` count once).

The module is also the entry point of two of those children (``python -m
benchmarks.intake_bench iterparse|pandas LIST``), so each contender's code is here to read.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
CACHE = REPO / ".bench"
MB = 1_000_000
GIB = 1 << 30
PANDAS_SAMPLE_BYTES = 300 * MB  # pandas.read_xml is slow and needs ~18x the file in memory
PANDAS_MAX_FILE_BYTES = 2_000 * MB  # above this the large-file pandas case is skipped
SAMPLE_SECONDS = 0.1
TIME = "/usr/bin/time"  # GNU time (Debian package "time"): the per-contender ru_maxrss
_NS = re.compile(rb'<Melding[^>]*?xmlns="([^"]+)"')
_ENCODING = re.compile(rb'^<\?xml[^>]*encoding="([^"]+)"')


@dataclass(frozen=True)
class Scale:
    """The ``run_synth`` parameters that define a generated data set (and its cache key)."""

    units: int = 200
    through: int = 4
    episodes: float = 300.0
    seed: int = 1

    @property
    def key(self) -> str:
        return f"u{self.units}-m{self.through:02d}-e{self.episodes:g}-s{self.seed}"


@dataclass(frozen=True)
class Dataset:
    """A generated inbox and the registry its senders are in."""

    root: Path
    scale: Scale
    generate_seconds: float | None  # None: reused from the cache

    @property
    def inbox(self) -> Path:
        return self.root / "inbox"

    @property
    def registry(self) -> Path:
        return self.root / "registry.csv"

    @property
    def files(self) -> list[Path]:
        """What ``npr intake`` reads: every visible regular file, in name order."""
        return sorted(p for p in self.inbox.iterdir() if p.is_file() and not p.name.startswith("."))

    @property
    def ord_files(self) -> list[Path]:
        return [p for p in self.files if p.name.endswith("_ord.xml")]

    @property
    def largest_ord(self) -> Path:
        return max(self.ord_files, key=lambda p: (p.stat().st_size, p.name))


def ensure_dataset(scale: Scale, cache: Path = CACHE) -> Dataset:
    """The data set of ``scale``, generated once into ``cache`` and reused afterwards.

    A marker written last tells a complete set from one a killed run left half-written, which
    is generated again rather than measured.
    """
    root = cache / f"synth-{scale.key}"
    marker = root / "complete.json"
    if marker.exists():
        return Dataset(root, scale, None)
    from npr_pipeline.synth.run import SynthOptions, run_synth

    shutil.rmtree(root, ignore_errors=True)
    started = time.perf_counter()
    result = run_synth(
        SynthOptions(
            out=root,
            year=2026,
            through=scale.through,
            units=scale.units,
            seed=scale.seed,
            episodes_per_unit_month=scale.episodes,
        )
    )
    seconds = time.perf_counter() - started
    totals = {"files": result.files, "episodes": result.episodes, "bytes": result.bytes}
    marker.write_text(json.dumps(totals | {"seconds": round(seconds, 1)}) + "\n")
    return Dataset(root, scale, seconds)


@dataclass
class Measurement:
    """One contender on one set of files."""

    name: str
    case: str  # "inbox", "pandas sample" or "largest file"
    files: int
    bytes: int
    seconds: float = 0.0
    max_rss: int = 0  # ru_maxrss: largest single process of the child's tree
    tree_pss: int = 0  # sampled peak of the summed PSS of the whole tree
    cpu_seconds: float = 0.0  # user + system of the child's tree: robust to a busy machine
    load: float = 0.0  # 1-minute load average when it started: others' work skews wall time
    returncode: int | None = None
    output: dict[str, object] = field(default_factory=dict)
    note: str = ""
    rounds_cpu: list[float] = field(default_factory=list)  # a median's runs, in their order

    @property
    def ok(self) -> bool:
        return self.returncode == 0

    @property
    def mb_per_s(self) -> float | None:
        return self.bytes / MB / self.seconds if self.ok and self.seconds > 0 else None

    @property
    def mb_per_cpu_s(self) -> float | None:
        return self.bytes / MB / self.cpu_seconds if self.ok and self.cpu_seconds > 0 else None

    @property
    def peak(self) -> int:
        """The memory figure the target is judged on: the larger of the two views."""
        return max(self.max_rss, self.tree_pss)

    def as_json(self) -> dict[str, object]:
        return asdict(self) | {
            "mb_per_s": self.mb_per_s,
            "mb_per_cpu_s": self.mb_per_cpu_s,
            "peak": self.peak,
        }


class _PssSampler(threading.Thread):
    """Polls the summed PSS of a process and all its descendants until stopped."""

    def __init__(self, root: int) -> None:
        super().__init__(daemon=True)
        self.root = root
        self.peak = 0
        self._stop_event = threading.Event()

    def run(self) -> None:
        while not self._stop_event.is_set():
            self.peak = max(self.peak, tree_pss(self.root))
            self._stop_event.wait(SAMPLE_SECONDS)

    def stop(self) -> None:
        self._stop_event.set()
        self.join()


def parse_with_month(
    parser: argparse.ArgumentParser, argv: Sequence[str] | None
) -> argparse.Namespace:
    """Parse ``argv``; ``--through`` (a month of 2026, the synthetic year) also as ``month``."""
    args = parser.parse_args(argv)
    match = re.fullmatch(r"2026-(0[1-9]|1[0-2])", args.through)
    if not match:
        parser.error("--through must be a month of 2026 as YYYY-MM")
    args.month = int(match[1])
    return args


def tree_pss(root: int) -> int:
    """Bytes of PSS of ``root`` and its descendants now (0 for processes already gone)."""
    children: dict[int, list[int]] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry.name}/stat").read_bytes()
        except OSError:
            continue
        ppid = int(stat.rsplit(b")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(entry.name))
    total, stack = 0, [root]
    while stack:
        pid = stack.pop()
        stack.extend(children.get(pid, ()))
        try:
            rollup = Path(f"/proc/{pid}/smaps_rollup").read_text()
        except OSError:
            continue
        match = re.search(r"^Pss:\s+(\d+) kB", rollup, re.MULTILINE)
        total += int(match[1]) * 1024 if match else 0
    return total


def measure(
    name: str, case: str, argv: Sequence[str | Path], files: Sequence[Path], parse_json: bool
) -> Measurement:
    """Run ``argv`` once as a child process; wall time, both peak-memory views, its output.

    The child runs under GNU ``/usr/bin/time``, whose ``%M`` is the ``ru_maxrss`` of the
    contender alone. Reading ``getrusage(RUSAGE_CHILDREN)`` or ``os.wait4`` here instead would
    be wrong twice: Linux carries the high-water mark of the forked harness (pandas and rich
    loaded, ~170 MiB) across ``exec``, and ``RUSAGE_CHILDREN`` is a maximum over every child
    ever reaped, so pandas' gigabytes would leak into every contender measured after it.
    """
    measurement = Measurement(name, case, len(files), sum(p.stat().st_size for p in files))
    measurement.load = os.getloadavg()[0]
    with (
        tempfile.NamedTemporaryFile("r") as usage,
        tempfile.TemporaryFile() as out,
        tempfile.TemporaryFile() as err,
    ):
        timed = [TIME, "-f", "%M %U %S", "-o", usage.name, *map(str, argv)]
        started = time.perf_counter()
        proc = subprocess.Popen(timed, stdout=out, stderr=err)
        sampler = _PssSampler(proc.pid)
        sampler.start()
        measurement.returncode = proc.wait()
        measurement.seconds = time.perf_counter() - started
        sampler.stop()
        measurement.tree_pss = sampler.peak
        max_rss_kib, user, system = usage.read().splitlines()[-1].split()
        measurement.max_rss = int(max_rss_kib) * 1024
        measurement.cpu_seconds = float(user) + float(system)
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read().decode(errors="replace"), err.read().decode(errors="replace")
    if not measurement.ok:
        measurement.note = f"exit {measurement.returncode}: {stderr.strip()[-300:]}"
    elif parse_json:
        measurement.output = json.loads(stdout)
    return measurement


def _file_list(work: Path, name: str, files: Sequence[Path]) -> Path:
    """Paths for a Python child in a file, not argv: hundreds of paths, one per line."""
    path = work / f"{name}.txt"
    path.write_text("".join(f"{p}\n" for p in files))
    return path


def pandas_sample(files: Sequence[Path], cap: int = PANDAS_SAMPLE_BYTES, seed: int = 1) -> list:
    """A seeded random subset of ``files`` of at most ``cap`` bytes, small and large alike."""
    shuffled = sorted(files)
    random.Random(seed).shuffle(shuffled)
    chosen, total = [], 0
    for path in shuffled:
        size = path.stat().st_size
        if total + size <= cap:
            chosen.append(path)
            total += size
    return sorted(chosen)


def require_tools() -> None:
    """Stop before anything is timed when libxml2's xmllint or GNU time is missing (a new
    machine has neither): every floor is an xmllint run, and one that could not start would
    read as 0 s."""
    missing = [tool for tool in ("xmllint", TIME) if shutil.which(tool) is None]
    if missing:
        sys.exit(f"needs {' and '.join(missing)} (Debian: apt-get install libxml2-utils time)")


def xmllint(case: str, files: Sequence[Path]) -> Measurement:
    """libxml2's C streaming parser, one core, one process over all files: the practical limit."""
    return measure(
        "xmllint --stream", case, ["xmllint", "--noout", "--stream", *files], files, False
    )


def iterparse(case: str, files: Sequence[Path], work: Path) -> Measurement:
    """lxml iterparse that extracts nothing: the floor of any lxml-based reader, one core."""
    argv = [sys.executable, "-m", "benchmarks.intake_bench", "iterparse"]
    return measure(
        "lxml iterparse (no extraction)", case, [*argv, _file_list(work, "iterparse", files)],
        files, True,
    )  # fmt: skip


def pandas(case: str, files: Sequence[Path], work: Path) -> Measurement:
    """The naive way: ``pandas.read_xml`` of every Episode, one file after another."""
    big = [p for p in files if p.stat().st_size > PANDAS_MAX_FILE_BYTES]
    if big:
        skipped = Measurement(
            "pandas.read_xml", case, len(files), sum(p.stat().st_size for p in files)
        )
        skipped.note = f"skipped: {big[0].name} is above {PANDAS_MAX_FILE_BYTES // MB} MB"
        return skipped
    argv = [sys.executable, "-m", "benchmarks.intake_bench", "pandas"]
    return measure("pandas.read_xml", case, [*argv, _file_list(work, "pandas", files)], files, True)


def intake(case: str, dataset: Dataset, files: Sequence[Path], work: Path) -> Measurement:
    """``npr intake INBOX --json`` into a fresh HOME whose registry holds the senders.

    The registry import is setup and not timed; the timed child is the whole command as an
    operator runs it (interpreter start, imports, archive, both workers, ledger, reports).

    The HOME (a folder of its own in ``work``) is removed with ``work`` at the benchmark's end,
    never between two timed runs. This machine's root is ext4 without a journal, whose inode
    allocator skips every inode freed within the last 60 s (360 s while its inode table block
    is dirty), looking each one up: an April intake ~30 s after the previous round's HOME
    (~35,000 files) was removed paid 6-8 CPU s more system time than one with no removal in
    the minute before (docs/benchmarks.md, "Session 20"). A register's HOME is never removed a
    minute before its intake.
    """
    npr = Path(sys.executable).with_name("npr")
    home = Path(tempfile.mkdtemp(prefix=f"home-{case.replace(' ', '-')}-", dir=work))
    inbox = dataset.inbox
    if list(files) != dataset.files:
        inbox = work / f"inbox-{case.replace(' ', '-')}"
        if not inbox.exists():  # a later round reuses the links
            inbox.mkdir()
            for path in files:
                os.link(path, inbox / path.name)
    subprocess.run(
        [npr, "--home", home, "registry", "import", dataset.registry],
        check=True,
        capture_output=True,
    )
    result = measure(
        "npr intake", case, [npr, "--home", home, "intake", inbox, "--json"], files, True
    )
    if result.ok:
        doc = result.output
        result.output = {
            k: doc[k]
            for k in ("files", "accepted", "rejected", "duplicates", "test", "episodes", "seconds")
        } | {"rejected_by_reason": doc["rejected_by_reason"]}
    return result


def machine() -> dict[str, object]:
    """What the figures depend on, so a reader can tell whether theirs are comparable."""
    import platform

    import lxml
    import pandas as pd
    import pyarrow
    from lxml import etree

    cpuinfo = Path("/proc/cpuinfo").read_text()
    meminfo = Path("/proc/meminfo").read_text()
    model = re.search(r"^model name\s*:\s*(.+)$", cpuinfo, re.MULTILINE)
    mem = re.search(r"^MemTotal:\s+(\d+) kB", meminfo, re.MULTILINE)
    lint = (
        subprocess.run(["xmllint", "--version"], capture_output=True, text=True)
        if shutil.which("xmllint")
        else None  # the quality benchmark does not need it
    )
    lint_version = lint and re.search(
        r"libxml version (\d+)(\d\d)(\d\d)", lint.stderr + lint.stdout
    )
    commit = subprocess.run(
        ["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"], capture_output=True, text=True
    )
    return {
        "nproc": len(os.sched_getaffinity(0)),
        "cpu": model[1].strip() if model else platform.processor(),
        "memory_gib": round(int(mem[1]) / (1 << 20), 1) if mem else None,
        "kernel": platform.release(),
        "python": platform.python_version(),
        "lxml": lxml.__version__,
        "libxml2 (lxml)": ".".join(map(str, etree.LIBXML_VERSION)),
        "libxml2 (xmllint)": ".".join(str(int(g)) for g in lint_version.groups())
        if lint_version
        else "not installed",
        "pandas": pd.__version__,
        "pyarrow": pyarrow.__version__,
        "commit": commit.stdout.strip(),
    }


# -- the children ----------------------------------------------------------------------------
def _run_iterparse(files: list[Path]) -> dict[str, object]:
    """The reference loop of the issue: parse, touch each Objektholder, clear it, keep nothing."""
    from lxml import etree

    patients = 0
    for path in files:
        for _, elem in etree.iterparse(str(path), events=("end",), tag="{*}Objektholder"):
            patients += 1
            elem.clear()
    return {"patients": patients}


def _run_pandas(files: list[Path]) -> dict[str, object]:
    """One DataFrame of Episode rows per file, as a naive loader would do it.

    The declared encoding is passed on: pandas' default ``utf-8`` would misread the
    ISO-8859-1 submissions (and it refuses ``None`` for a path).
    """
    import pandas as pd

    rows = 0
    for path in files:
        with open(path, "rb") as fh:
            head = fh.read(8192)
        namespace, encoding = _NS.search(head), _ENCODING.search(head)
        if namespace is None:
            continue
        try:
            frame = pd.read_xml(
                path,
                xpath="//n:Episode",
                namespaces={"n": namespace[1].decode()},
                encoding=encoding[1].decode() if encoding else "utf-8",
                parser="lxml",
            )
        except ValueError as exc:  # a unit without episodes this period: no rows, not an error
            if "does not return any nodes" not in str(exc):
                raise
            continue
        rows += len(frame)
    return {"episodes": rows}


def main(argv: list[str]) -> None:
    """``python -m benchmarks.intake_bench iterparse|pandas LISTFILE``: one contender's child."""
    mode, listfile = argv
    files = [Path(line) for line in Path(listfile).read_text().splitlines() if line]
    run = {"iterparse": _run_iterparse, "pandas": _run_pandas}[mode]
    print(json.dumps(run(files)))


if __name__ == "__main__":
    main(sys.argv[1:])
