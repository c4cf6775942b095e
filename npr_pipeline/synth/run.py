"""``npr synth``: a deterministic synthetic reporting year for a chosen set of units.

Units are generated in parallel processes (both cores), largest first so the pool stays busy;
each unit's files depend only on (seed, reshID), so the result does not depend on scheduling.

A unit reports by one route (the registry's ``route`` column): ``monthly`` cumulative ord/ide
files, or ``daily`` event files (:mod:`npr_pipeline.synth.daily`) of the same year: the unit's
records are generated the same way whichever route it takes.
"""

from __future__ import annotations

import csv
import functools
import gc
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa

from npr_pipeline import reference
from npr_pipeline.atomic import atomic_open
from npr_pipeline.messages import versions
from npr_pipeline.periods import month_end
from npr_pipeline.registry import as_text
from npr_pipeline.synth.cutoff import episodes_as_of
from npr_pipeline.synth.daily import write_unit_files
from npr_pipeline.synth.events import unit_events
from npr_pipeline.synth.generate import generate_unit_year
from npr_pipeline.synth.model import UnitInfo, UnitYear
from npr_pipeline.synth.population import Catchment
from npr_pipeline.synth.private import private_units
from npr_pipeline.synth.reports import report_types_of, write_reports
from npr_pipeline.synth.truth import TABLE_NAMES, truth_tables
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
    "route",
)
MIN_EPISODES_PER_MONTH = 2.0
ROUTES = ("monthly", "daily", "mixed")


@dataclass(frozen=True)
class SynthOptions:
    """The arguments of ``npr synth``."""

    out: Path
    year: int
    through: int
    units: int | None = None
    seed: int = 1
    episodes_per_unit_month: float = 300.0  # national mean; a unit's share follows size_weight
    defects: float = 0.0  # monthly route only: the daily route ignores it
    route: str = "monthly"
    daily_share: float = 0.5  # with route "mixed": the share of units on the daily route
    private_units: int = 0


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
    route: str
    reports: tuple[str, ...] = ()  # the report types the unit's registry row lists


def select_units(options: SynthOptions) -> pd.DataFrame:
    """The registry subset (``--units N``) of units active in the year and the ``--private-units``
    providers, largest first, each with its route."""
    units = reference.representative_units(options.units or 10**9, seed=options.seed)
    if options.private_units:
        private = private_units(options.private_units, options.seed)
        units = pd.concat([units, private], ignore_index=True)
    units["route"] = _routes(units["reshID"], options)
    return units.sort_values("size_weight", ascending=False, kind="stable")


def _routes(resh: pd.Series, options: SynthOptions) -> list[str]:
    """Each unit's route: all one way, or (mixed) a seeded draw of round(share x n) daily units."""
    if options.route != "mixed":
        return [options.route] * len(resh)
    order = sorted(resh)
    chosen = np.random.default_rng([options.seed, 31]).permutation(len(order))
    daily = {order[i] for i in chosen[: round(options.daily_share * len(order))]}
    return ["daily" if r in daily else "monthly" for r in resh]


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
    # financing says who funds the unit: public (also by contract or RHF agreement) or private
    frame["financing"] = frame["financing"].where(frame["financing"] == "private", "public")
    with atomic_open(path, "w", encoding="utf-8", newline="") as fh:
        frame.to_csv(fh, index=False)


def _tasks(units: pd.DataFrame, options: SynthOptions) -> Iterator[_UnitTask]:
    mean_weight = float(reference.units()["size_weight"].mean())
    version = reference.message_version(options.year)
    for row in units.itertuples(index=False):
        unit = UnitInfo.of(row._asdict())
        per_month = max(
            MIN_EPISODES_PER_MONTH,
            options.episodes_per_unit_month * unit.size_weight / mean_weight,
        )
        if unit.size_weight == 0:  # an idle private provider: nothing to report this year
            per_month = 0.0
        encoding = "iso-8859-1" if int(unit.resh) % 5 == 0 else "utf-8"
        reports = report_types_of(row.message_types)
        yield _UnitTask(unit, per_month, options, version, encoding, row.route, reports)


def expected_tables(options: SynthOptions, month: int) -> dict[str, pa.Table]:
    """The truth of the run ``options`` describes, through ``month``: every unit's net records
    (:mod:`npr_pipeline.synth.truth`) in the monthly lake tables' columns without lineage, the
    same whichever route each unit took. Generated again from the seed, not read from files:
    what both routes' results are compared with."""
    parts: dict[str, list[pa.Table]] = {name: [] for name in TABLE_NAMES}
    for task in _tasks(select_units(options), options):
        for name, table in truth_tables(_unit_year(task), options.year, month).items():
            parts[name].append(table)
    return {name: pa.concat_tables(tables) for name, tables in parts.items()}


def _unit_year(task: _UnitTask) -> UnitYear:
    options = task.options
    return generate_unit_year(
        task.unit,
        options.year,
        options.through,
        options.seed,
        task.episodes_per_month,
        _catchment(),
        _valid_fagomrader(),
    )


@functools.cache
def _valid_fagomrader() -> frozenset[str]:
    return frozenset(reference.code_list("fagomrade"))


@functools.cache
def _catchment() -> Catchment:
    """The municipalities per region, once per worker process (a tiny provider's whole year
    took less time than building this)."""
    munis = reference.municipalities()
    munis = munis[munis["rhf_code"].fillna("") != ""]
    return Catchment(
        {rhf: tuple(group["komnr"]) for rhf, group in munis.groupby("rhf_code", sort=True)}
    )


def _run_unit(task: _UnitTask) -> tuple[int, int, int, list[tuple[str, str, str]]]:
    """Generate one unit's year and write its files by its route (runs in a worker process).

    The cyclic garbage collector is paused meanwhile: a big unit's year is millions of small
    objects without cycles (freed by reference counting), and the collector's repeated scans of
    that growing heap took more than half the time of the daily route's events.
    """
    gc.disable()
    try:
        return _unit_files(task)
    finally:
        gc.enable()


def _unit_files(task: _UnitTask) -> tuple[int, int, int, list[tuple[str, str, str]]]:
    """The unit's files of its route, then those of the report types it sends."""
    unit_year = _unit_year(task)
    files, episodes, size, defects = _route_files(task, unit_year)
    options = task.options
    reports = write_reports(
        options.out / "inbox", unit_year, task.reports, options.year, options.through, options.seed
    )
    return files + len(reports), episodes, size + sum(p.stat().st_size for p in reports), defects


def _route_files(
    task: _UnitTask, unit_year: UnitYear
) -> tuple[int, int, int, list[tuple[str, str, str]]]:
    options, unit = task.options, task.unit
    if task.route == "daily":
        events = unit_events(unit_year, options.year, options.through, options.seed)
        paths, size = write_unit_files(options.out / "inbox", unit, events, options.seed)
        last_day = month_end(options.year, options.through)
        episodes = sum(len(episodes_as_of(p.episodes, last_day)) for p in unit_year.patients)
        return len(paths), episodes, size, []
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
                version=(
                    _other_version(msg, task.version) if defect == "wrong_version" else task.version
                ),
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


def _other_version(kind: str, version: str) -> str:
    """A version of ``kind`` that is wrong for the year: the previous one its folders hold, or
    the next for the oldest."""
    held = versions(kind)
    index = held.index(version)
    return held[index - 1] if index > 0 else held[index + 1]
