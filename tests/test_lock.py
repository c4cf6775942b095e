"""The locked dependencies: requirements.lock, pyproject.toml and the environment agree.

`make` installs exactly ``requirements.lock`` (then the package with ``--no-deps``); ``make
lock`` is the one deliberate way to change it (README, docs/audit.md).
"""

from __future__ import annotations

import re
import tomllib
from importlib import metadata
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from npr_pipeline.quality import gx_duckdb

ROOT = Path(__file__).resolve().parents[1]
PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;#]+)$")


def _locked() -> dict[str, str]:
    pins = {}
    for line in (ROOT / "requirements.lock").read_text(encoding="utf-8").splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        match = PIN.match(line.strip())
        assert match, f"requirements.lock: not an exact pin: {line!r}"
        pins[canonicalize_name(match[1])] = match[2]
    return pins


def _declared() -> list[Requirement]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    extras = [r for group in project["optional-dependencies"].values() for r in group]
    return [Requirement(r) for r in [*project["dependencies"], *extras]]


def test_every_declared_dependency_is_locked_within_its_range() -> None:
    locked = _locked()
    for requirement in _declared():
        name = canonicalize_name(requirement.name)
        assert name in locked, f"{name} is not in requirements.lock: run `make lock`"
        assert requirement.specifier.contains(locked[name], prereleases=True), (
            f"requirements.lock pins {name}=={locked[name]}, outside pyproject's "
            f"{requirement.specifier}: run `make lock`"
        )


def test_great_expectations_is_pinned_exactly_to_the_checked_version() -> None:
    """The DuckDB work-around patches GX internals: only the version it was checked on."""
    (gx,) = [r for r in _declared() if canonicalize_name(r.name) == "great-expectations"]
    (spec,) = list(gx.specifier)
    assert spec.operator == "==", "pin great-expectations exactly in pyproject.toml"
    assert spec.version == _locked()["great-expectations"]
    assert spec.version in gx_duckdb.WORKAROUND_GX_VERSIONS


def test_the_environment_is_the_locked_one() -> None:
    """What runs is what is locked (install with make, never with a bare pip install)."""
    locked = _locked()
    wrong = {}
    for name, version in locked.items():
        try:
            installed = metadata.version(name)
        except metadata.PackageNotFoundError:
            installed = None
        if installed != version:
            wrong[name] = (version, installed)
    assert not wrong, f"installed differs from requirements.lock (locked, installed): {wrong}"
