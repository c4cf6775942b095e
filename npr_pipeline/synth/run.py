"""``npr synth``: a deterministic synthetic reporting year for a chosen set of units.

Units are generated in parallel processes (both cores), largest first so the pool stays busy;
each unit's files depend only on (seed, reshID), so the result does not depend on scheduling.
"""

from __future__ import annotations

import csv
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from npr_pipeline import reference
from npr_pipeline.atomic import atomic_open
from npr_pipeline.registry import as_text
from npr_pipeline.schemas import VERSIONS
from npr_pipeline.synth.generate import generate_unit_year
from npr_pipeline.synth.model import UnitInfo
from npr_pipeline.synth.population import Catchment
from npr_pipeline.synth.writer import FileSpec, write_submission

ORD_DEFECTS = (
    "schema_violation",
    "reversed_dates",
    "unknown_icd10",
    "duplicate_episode_id",
    "wrong_version",
    "unknown_sender",
    "test_orgnr",
    "truncated",
)
IDE_DEFECTS = ("patient_without_ident", "wrong_version", "unknown_sender", "truncated")
REGISTRY_COLUMNS = (
    "reshID",
    "orgnr",
    "herID",
    "name",
    "unit_type",
    "parent_trust",
    "rhf",
    "komnr",
    "ownership",
    "financing",
    "sector",
    "fagomrade",
    "isf_agreement",
    "message_types",
    "size_weight",
    "valid_from",
    "valid_to",
)
MIN_EPISODES_PER_MONTH = 2.0


@dataclass(frozen=True)
class SynthOptions:
    """The arguments of ``npr synth``."""

    out: Path
    year: int
    through: int
    units: int | None = None
    seed: int = 1
    episodes_per_unit_month: float = 300.0  # national mean; a unit's share follows size_weight
    defects: float = 0.0


@dataclass
class SynthResult:
    """What was written, for the summary table."""

    units: int = 0
    files: int = 0
    episodes: int = 0
    bytes: int = 0
    defects: list[tuple[str, str, str]] = field(default_factory=list)


@dataclass(frozen=True)
class _UnitTask:
    unit: UnitInfo
    episodes_per_month: float
    options: SynthOptions
    version: str
    encoding: str


def select_units(options: SynthOptions) -> pd.DataFrame:
    """The registry subset (``--units N``) of units active in the year, largest first."""
    units = reference.representative_units(options.units or 10**9, seed=options.seed)
    return units.sort_values("size_weight", ascending=False, kind="stable")


def run_synth(options: SynthOptions, progress: Callable[[int], None] | None = None) -> SynthResult:
    """Write registry.csv, the inbox and (with defects) defects.csv; returns the totals."""
    inbox = options.out / "inbox"
    inbox.mkdir(parents=True, exist_ok=True)
    units = select_units(options)
    _write_registry(units, options.out / "registry.csv")
    result = SynthResult(units=len(units))
    tasks = list(_tasks(units, options))
    with ProcessPoolExecutor(max_workers=2) as pool:
        for files, episodes, size, defects in pool.map(_run_unit, tasks, chunksize=1):
            result.files += files
            result.episodes += episodes
            result.bytes += size
            result.defects.extend(defects)
            if progress:
                progress(1)
    result.defects.sort()
    if options.defects > 0:
        with atomic_open(options.out / "defects.csv", "w", encoding="utf-8", newline="") as fh:
            writer = csv.writer(fh)
            writer.writerow(("file", "record", "defect"))
            writer.writerows(result.defects)
    return result


def _write_registry(units: pd.DataFrame, path: Path) -> None:
    """The subset as a registry file ``npr registry import`` takes: ISO dates, lower-case flags."""
    frame = as_text(units.loc[:, list(REGISTRY_COLUMNS)])
    with atomic_open(path, "w", encoding="utf-8", newline="") as fh:
        frame.to_csv(fh, index=False)


def _tasks(units: pd.DataFrame, options: SynthOptions) -> Iterator[_UnitTask]:
    mean_weight = float(reference.units()["size_weight"].mean())
    version = reference.message_version(options.year)
    for row in units.itertuples(index=False):
        unit = UnitInfo(
            resh=row.reshID,
            orgnr=row.orgnr,
            her=row.herID,
            name=row.name,
            unit_type=row.unit_type,
            rhf=row.rhf,
            komnr=row.komnr,
            sector=row.sector,
            fagomrade=row.fagomrade,
            size_weight=float(row.size_weight),
        )
        per_month = max(
            MIN_EPISODES_PER_MONTH,
            options.episodes_per_unit_month * unit.size_weight / mean_weight,
        )
        encoding = "iso-8859-1" if int(unit.resh) % 5 == 0 else "utf-8"
        yield _UnitTask(unit, per_month, options, version, encoding)


def _catchment() -> Catchment:
    munis = reference.municipalities()
    munis = munis[munis["rhf_code"].fillna("") != ""]
    return Catchment(
        {rhf: tuple(group["komnr"]) for rhf, group in munis.groupby("rhf_code", sort=True)}
    )


def _run_unit(task: _UnitTask) -> tuple[int, int, int, list[tuple[str, str, str]]]:
    """Generate one unit's year and write its 2 x months files (runs in a worker process)."""
    options, unit = task.options, task.unit
    valid_fag = set(reference.code_list("fagomrade"))
    unit_year = generate_unit_year(
        unit,
        options.year,
        options.through,
        options.seed,
        task.episodes_per_month,
        _catchment(),
        valid_fag,
    )
    rng = np.random.default_rng([options.seed, int(unit.resh), 99])
    files = episodes = size = 0
    defects: list[tuple[str, str, str]] = []
    for month in range(1, options.through + 1):
        for msg, kinds in (("ord", ORD_DEFECTS), ("ide", IDE_DEFECTS)):
            defect = None
            if options.defects > 0 and rng.random() < options.defects:
                defect = str(kinds[int(rng.integers(len(kinds)))])
            spec = FileSpec(
                path=options.out / "inbox" / f"{unit.resh}_{options.year}-{month:02d}_{msg}.xml",
                msg=msg,
                year=options.year,
                month=month,
                version=_other_version(task.version) if defect == "wrong_version" else task.version,
                lopenr=2 * month - (1 if msg == "ord" else 0),
                encoding=task.encoding,
                defect=defect,
                seed=options.seed,
            )
            written, labels = write_submission(spec, unit_year)
            files += 1
            episodes += written
            size += spec.path.stat().st_size
            defects.extend((spec.path.name, record, kind) for record, kind in labels)
    return files, episodes, size, defects


def _other_version(version: str) -> str:
    """A version that is wrong for the year: the previous one, or the next for the oldest."""
    index = VERSIONS.index(version)
    return VERSIONS[index - 1] if index > 0 else VERSIONS[index + 1]
