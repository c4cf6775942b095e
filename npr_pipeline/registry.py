"""The unit registry as imported into HOME: versioned, never silently overwritten.

Each import that changes anything becomes a new numbered version (the file as received plus a
JSON note of what changed); importing the same content again changes nothing. The gate checks
of intake, the content checks and production read the newest version. Nothing falls back to
the bundled (synthetic) reference registry in ``data/reference/units.csv``: until a registry has
been imported, intake and production refuse (:class:`NoRegistry`).

The first import decides a HOME's environment when nothing has yet (``settings``): a synthetic
registry makes a test HOME; a production HOME refuses one (:class:`SyntheticRegistryRefused`).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
from stdnum.no import orgnr as orgnr_check

from npr_pipeline.atomic import write_bytes, write_text
from npr_pipeline.home import Home
from npr_pipeline.settings import (
    PRODUCTION,
    TEST,
    HomeEnvironmentError,
    environment,
    record_environment,
    recorded_environment,
    synthetic_units,
)

REQUIRED = ("reshID", "orgnr", "herID", "name", "rhf", "ownership")
ROUTES = ("", "monthly", "daily")  # a unit's reporting route; empty means monthly


class RegistryError(ValueError):
    """The file cannot be a registry; the message says which rows or columns are wrong."""


class NoRegistry(RuntimeError):
    """No registry has been imported into this HOME: intake and production refuse to run."""

    def __init__(self, home: Home) -> None:
        super().__init__(
            f"no unit registry imported into {home.root}: run `npr registry import FILE.csv` "
            "first (the bundled synthetic registry is never used in its place)"
        )


class SyntheticRegistryRefused(HomeEnvironmentError):
    """A production HOME was given a synthetic registry."""


@dataclass(frozen=True)
class ImportResult:
    """What an import did."""

    version: int
    changed: bool
    units: int
    added: int
    removed: int
    modified: int


def read_registry_csv(path: Path) -> pd.DataFrame:
    """Read and check a registry file: required columns, unique ids, valid orgnr."""
    try:
        frame = pd.read_csv(path, dtype=str, comment="#", keep_default_na=False)
    except (OSError, ValueError, UnicodeDecodeError) as exc:
        raise RegistryError(f"{path}: cannot read as CSV ({exc})") from exc
    missing = [c for c in REQUIRED if c not in frame.columns]
    if missing:
        raise RegistryError(f"{path}: missing columns {', '.join(missing)}")
    for column in ("reshID", "orgnr", "herID"):
        dupes = frame.loc[frame[column].duplicated(), column].tolist()
        if column != "orgnr" and dupes:
            raise RegistryError(f"{path}: duplicate {column}: {', '.join(dupes[:5])}")
    bad = frame.loc[~frame["orgnr"].map(orgnr_check.is_valid), "orgnr"].tolist()
    if bad:
        raise RegistryError(f"{path}: invalid organisation numbers: {', '.join(bad[:5])}")
    if "route" in frame.columns:
        wrong = frame.loc[~frame["route"].str.strip().isin(ROUTES), "route"].unique().tolist()
        if wrong:
            raise RegistryError(f"{path}: unknown route {', '.join(wrong[:5])} (monthly or daily)")
    return frame


def import_registry(home: Home, path: Path) -> ImportResult:
    """Store ``path`` as a new registry version if it differs from the current one."""
    frame = read_registry_csv(path)
    data = path.read_bytes()
    versions = _versions(home)
    synthetic = synthetic_units(frame)
    if not versions and recorded_environment(home) is None:
        # the HOME's first import decides its environment, unless it was created as one
        chosen = TEST if synthetic else PRODUCTION
        record_environment(home, chosen, f"first registry import {path.name}")
    if synthetic and environment(home) == PRODUCTION:
        raise SyntheticRegistryRefused(
            f"{path}: a synthetic registry (units of the bundled reference registry, e.g. "
            f"{', '.join(synthetic[:3])}) is refused in the production HOME {home.root}"
        )
    current = current_registry(home) if versions else None
    if versions and _checksum(versions[-1]) == hashlib.sha256(data).hexdigest():
        return ImportResult(len(versions), False, len(frame), 0, 0, 0)
    added, removed, modified = _compare(current, frame)
    version = len(versions) + 1
    target = home.registry / f"registry-v{version:04d}.csv"
    write_bytes(target, data)
    result = ImportResult(version, True, len(frame), added, removed, modified)
    note = {**asdict(result), "source": str(path), "imported": datetime.now(UTC).isoformat()}
    write_text(target.with_suffix(".json"), json.dumps(note, indent=2))
    return result


def current_registry(home: Home) -> pd.DataFrame:
    """The newest imported registry; :class:`NoRegistry` if none has been imported."""
    versions = _versions(home)
    if not versions:
        raise NoRegistry(home)
    return pd.read_csv(versions[-1], dtype=str, comment="#", keep_default_na=False)


def unit_names(home: Home) -> dict[str, str]:
    """RESH id to name of every unit of the newest registry; :class:`NoRegistry` if none.

    Two columns read a few thousand rows at a time: the whole registry as a frame (65,000
    units on a national day) took 1.03 s of CPU and raised a fresh process's high-water mark
    by 61 MiB for the one column the answers' envelopes name the unit by; this way 0.57 s and
    37 MiB, of which the dict held is ~10 MiB.
    """
    versions = _versions(home)
    if not versions:
        raise NoRegistry(home)
    names: dict[str, str] = {}
    columns = ["reshID", "name"]
    read = pd.read_csv(versions[-1], dtype=str, comment="#", keep_default_na=False,
                       usecols=columns, chunksize=5_000)  # fmt: skip
    with read as chunks:
        for chunk in chunks:
            names.update(zip(chunk["reshID"], chunk["name"], strict=True))
    return names


def current_version(home: Home) -> tuple[int, str]:
    """(version number, SHA-256 of its file) of the newest registry; :class:`NoRegistry`."""
    versions = _versions(home)
    if not versions:
        raise NoRegistry(home)
    return len(versions), _checksum(versions[-1])


def as_text(units: pd.DataFrame) -> pd.DataFrame:
    """The registry as a registry file holds it: ISO dates, lower-case flags, all text."""
    frame = units.copy()
    for column in ("valid_from", "valid_to"):
        if column in frame and pd.api.types.is_datetime64_any_dtype(frame[column]):
            frame[column] = frame[column].dt.strftime("%Y-%m-%d").fillna("")
    if "isf_agreement" in frame and frame["isf_agreement"].dtype == bool:
        frame["isf_agreement"] = frame["isf_agreement"].map({True: "true", False: "false"})
    return frame.astype(str)


def _versions(home: Home) -> list[Path]:
    return sorted(home.registry.glob("registry-v*.csv"))


def _checksum(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _compare(old: pd.DataFrame | None, new: pd.DataFrame) -> tuple[int, int, int]:
    """(added, removed, modified) units by reshID."""
    if old is None:
        return len(new), 0, 0
    old_idx, new_idx = old.set_index("reshID"), new.set_index("reshID")
    common = old_idx.index.intersection(new_idx.index)
    columns = [c for c in new_idx.columns if c in old_idx.columns]
    left = old_idx.loc[common, columns].fillna("")
    right = new_idx.loc[common, columns].fillna("")
    modified = int((left != right).any(axis=1).sum())
    added = len(new_idx.index.difference(old_idx.index))
    removed = len(old_idx.index.difference(new_idx.index))
    return added, removed, modified


def lists_types(registry: pd.DataFrame, codes: tuple[str, ...]) -> pd.Series:
    """Whether each unit's ``message_types`` (``;``-separated) lists every one of ``codes``:
    the one reading of that column for the production gate and the report obligations."""
    listed = registry["message_types"].fillna("").astype(str).str.split(";")
    wanted = set(codes)
    return listed.map(lambda types: wanted <= set(types)).astype(bool)
