"""Shared fixtures: the synthetic years, and the HOMEs that received them, built once per test
session for both xdist workers (``built_once``); a module copies a HOME (``home_copy``)."""

from __future__ import annotations

import fcntl
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from npr_pipeline.synth.run import SynthOptions, run_synth
from tests.intake_files import received_year
from tests.soak import SOAK

SHARED_REFERENCE = Path(__file__).resolve().parents[1].parent / "shared" / "reference"

LONGEST_FIRST = (
    "test_two_routes.py",
    "test_readme.py",
    "test_intake_hostile.py",
    "test_production_runs.py",
    "test_intake_values.py",
    "test_intake_isolation.py",
    "test_period_snapshot.py",
    "test_reproducible.py",
    "test_deliveries_recomputed.py",
)
"""The modules of most time in ``make test`` (20-115 worker-seconds each; tests/README.md),
longest first. ``--dist loadscope`` hands modules to the workers in collection order
(``pytest_configure``): run one of these last and a worker finishes it alone while the other
idles (223 against 288 CPU-seconds)."""
SOAK_LONGEST_FIRST = (
    "test_intake_values.py",
    "test_run_recovery.py",
    "test_two_routes.py",
    "test_identity.py",
    "test_intake_isolation.py",
    "test_key_digest.py",
    "test_native_probe.py",
    "test_suppression.py",
    "test_results_batches.py",
    "test_no_fnr_outside_vault.py",
    "test_lake_monthly.py",
)
"""The same for ``make soak``, whose modules take 30-320 worker-seconds each (tests/README.md,
"Session 17"): ``test_run_recovery.py`` (290 s) ranked with the rest started last and ran alone
for minutes (757-829 s of wall for 1,355 worker-seconds)."""


def pytest_configure(config: pytest.Config) -> None:
    """Keep the collection order for ``--dist loadscope``: pytest-xdist (3.6+) otherwise hands
    the modules out by their number of tests, most first, which put the longest modules (few
    tests each) last and left one worker finishing them alone."""
    if hasattr(config.option, "loadscopereorder"):
        config.option.loadscopereorder = False


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The longest modules first, each keeping its tests' order (module fixtures rely on it)."""
    items.sort(key=lambda item: _rank(item.path.name))


def _rank(module: str) -> int:
    order = SOAK_LONGEST_FIRST if SOAK else LONGEST_FIRST
    return order.index(module) if module in order else len(order)


@pytest.fixture(scope="session", autouse=True)
def system_tmp(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The system temporary folder of the tests and the ``npr`` children they start: a folder
    of the worker's base temp, removed with it.

    The product falls back on the system temporary folder where HOME cannot be written (the
    error log, a read-only HOME's display files), which the read-only-HOME tests provoke on
    purpose: with the system's, every ``make test`` left an ``npr-feedback-*`` folder and an
    ``npr-errors.log`` in ``/tmp``.
    """
    folder = tmp_path_factory.mktemp("system-tmp", numbered=False)
    before = os.environ.get("TMPDIR")
    os.environ["TMPDIR"] = str(folder)
    tempfile.tempdir = None  # gettempdir() reads TMPDIR again
    yield folder
    if before is None:
        del os.environ["TMPDIR"]
    else:
        os.environ["TMPDIR"] = before
    tempfile.tempdir = None


@pytest.fixture(scope="session")
def shared_reference() -> Path:
    """The public reference schemas beside the checkout (skip where ../shared is absent)."""
    if not SHARED_REFERENCE.is_dir():
        pytest.skip("../shared/reference is absent: cannot check against the public schemas")
    return SHARED_REFERENCE


@pytest.fixture(scope="session")
def shared_tmp(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder of this session that both xdist workers see: the parent of the workers' base
    temps (under xdist the session's ``--basetemp``, ``make test``'s ``TESTTMP/test``, or
    its own ``pytest-N``), else the base temp itself."""
    base = tmp_path_factory.getbasetemp()
    return base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base


def built_once(shared: Path, name: str, build: Callable[[Path], object]) -> Path:
    """``shared/name``, built by ``build`` in whichever worker asks first while the other
    waits on the lock; a build cut short (no ``.done`` marker) is started again."""
    target, done = shared / name, shared / f"{name}.done"
    with (shared / f"{name}.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes
        if not done.exists():
            shutil.rmtree(target, ignore_errors=True)
            build(target)
            done.touch()
    return target


@pytest.fixture(scope="session")
def small_year(shared_tmp: Path) -> Path:
    """Six units, January-April 2026, no defects."""

    def build(out: Path) -> None:
        run_synth(SynthOptions(out=out, year=2026, through=4, units=6, seed=7,
                               episodes_per_unit_month=30))  # fmt: skip

    return built_once(shared_tmp, "synth-clean", build)


@pytest.fixture(scope="session")
def defect_year(shared_tmp: Path) -> Path:
    """Eight units with a labelled fault in most files."""

    def build(out: Path) -> None:
        run_synth(SynthOptions(out=out, year=2026, through=3, units=8, seed=11, defects=0.6,
                               episodes_per_unit_month=10))  # fmt: skip

    return built_once(shared_tmp, "synth-defects", build)


@pytest.fixture(scope="session")
def received_small_year(shared_tmp: Path, small_year: Path) -> Path:
    """The small year through intake, once a session: modules take a copy (``home_copy``)."""
    return built_once(shared_tmp, "received-clean", lambda root: received_year(root, small_year))


@pytest.fixture(scope="session")
def received_defect_year(shared_tmp: Path, defect_year: Path) -> Path:
    """The defect year through intake, once a session: modules take a copy (``home_copy``)."""
    return built_once(shared_tmp, "received-defects", lambda root: received_year(root, defect_year))
