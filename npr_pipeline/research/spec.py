"""The extract spec: one YAML file per approved project, validated before anything runs.

Validation is strict on purpose: a typo must not widen an extract. Unknown keys and unknown
variables are refused, direct identifiers are refused (the extract carries a per-project
``person_key`` instead), a variable must exist at the requested level, cohort filter values
must be known codes, and every period must be covered by the data.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from npr_pipeline import reference
from npr_pipeline.home import Home
from npr_pipeline.periods import Period
from npr_pipeline.research.dictionary import ColumnType, Dictionary, Sensitivity
from npr_pipeline.store.lake import current_for_period
from npr_pipeline.store.ledger import load_ledger

Level = Literal["episode", "stay", "person"]
AGE_BANDS = (("0-17", 0, 17), ("18-49", 18, 49), ("50-66", 50, 66), ("67-79", 67, 79),
             ("80+", 80, 200))  # fmt: skip
PERSON = ("person_key", "sex", "birth_year", "age", "age_band", "home_municipality", "home_rhf")
UNIT = ("care_level", "fagomrade", "main_condition", "treating_unit", "department",
        "treating_rhf", "sector", "ownership", "length_of_stay_days")  # fmt: skip
# Which variables each level's rows carry (the extract builds one table per level with them).
LEVEL_VARIABLES: dict[str, tuple[str, ...]] = {
    "episode": PERSON
    + UNIT
    + (
        "episode_start",
        "episode_end",
        "urgency",
        "contact_type",
        "conditions",
        "procedure_codes",
    ),  # fmt: skip
    "stay": PERSON
    + UNIT
    + ("stay_kind", "stay_start", "stay_end", "episode_count", "drg", "drg_points"),  # fmt: skip
    "person": PERSON + ("episode_count", "first_contact", "last_contact"),
}
# Multi-valued or unique per person: not a dimension of a table.
NOT_DIMENSIONS = ("person_key", "conditions", "procedure_codes")
NUMERIC = (ColumnType.integer, ColumnType.float)
ICD10_PREFIX = re.compile(r"^[A-Z][0-9A-Z]{0,6}$")
PROCEDURE_PREFIX = re.compile(r"^[A-Z0-9]{1,7}$")


class SpecError(ValueError):
    """The spec cannot run; the message lists every problem found."""


class Cohort(BaseModel):
    """Who is in the extract; empty lists mean no restriction. Episodes must match all."""

    model_config = ConfigDict(extra="forbid")

    main_condition: list[str] = []  # ICD-10 prefixes on the main condition
    any_condition: list[str] = []  # ICD-10 prefixes on any condition of the episode
    procedures: list[str] = []  # procedure code prefixes (NCSP, NCMP, NCRP)
    age_bands: list[str] = []
    sex: list[str] = []
    home_rhf: list[str] = []
    treating_rhf: list[str] = []
    care_level: list[str] = []
    sector: list[str] = []
    ownership: list[str] = []


class TableSpec(BaseModel):
    """An aggregated table: counts per cell of one or two dimensions, with margins."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=r"^[a-z][a-z0-9_]{0,40}$")
    unit: Level = "episode"
    rows: str
    columns: str | None = None
    sum: list[str] = []
    mean: list[str] = []

    @property
    def dimensions(self) -> list[str]:
        return [self.rows] + ([self.columns] if self.columns else [])


class Spec(BaseModel):
    """One approved project's extract."""

    model_config = ConfigDict(extra="forbid")

    project: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
    title: str = Field(min_length=1)
    approval: str = Field(min_length=1)
    periods: list[str] = Field(min_length=1)
    level: Literal["episode", "stay", "person", "aggregate"]
    variables: list[str] = []
    date_precision: Literal["day", "month", "year"] = "month"
    cohort: Cohort = Cohort()
    tables: list[TableSpec] = []
    format: Literal["parquet", "csv"] = "parquet"
    publication: Literal["research", "public_statistics"] = "research"
    threshold: int | None = Field(default=None, ge=2)

    @property
    def parsed_periods(self) -> list[Period]:
        return [Period.parse(p) for p in self.periods]

    @property
    def min_count(self) -> int:
        """Smallest count published: the publication's threshold unless the spec raises it."""
        return max(self.threshold or 0, reference.suppression_threshold(self.publication))


def load_spec(path: Path) -> Spec:
    """Parse a spec file; a SpecError that names the file and every field in error."""
    try:
        doc = yaml.safe_load(path.read_text(encoding="utf-8"))
        return Spec.model_validate(doc)
    except yaml.YAMLError as exc:
        raise SpecError(f"{path}: not valid YAML: {exc}") from exc
    except ValidationError as exc:
        problems = [
            f"{'.'.join(str(p) for p in e['loc']) or '(top)'}: {e['msg']}" for e in exc.errors()
        ]
        raise SpecError(f"{path}: invalid spec:\n  " + "\n  ".join(problems)) from exc


def validate_spec(spec: Spec, dictionary: Dictionary) -> None:
    """Refuse what the dictionary does not allow (all problems at once)."""
    problems = _periods_parse(spec)
    if spec.level == "aggregate":
        if spec.variables:
            problems.append("level aggregate writes tables only: leave variables empty")
        if not spec.tables:
            problems.append("level aggregate needs at least one table")
    else:
        if not spec.variables:
            problems.append(f"level {spec.level} needs at least one variable")
        problems += _variables(spec.variables, spec.level, dictionary, "variables")
    names = [t.name for t in spec.tables]
    if len(names) != len(set(names)):
        problems.append(f"table names must be unique: {names}")
    for table in spec.tables:
        problems += _table(table, dictionary)
    problems += _cohort(spec.cohort)
    if problems:
        raise SpecError("spec refused:\n  " + "\n  ".join(problems))


def _periods_parse(spec: Spec) -> list[str]:
    problems = []
    for text in spec.periods:
        try:
            Period.parse(text)
        except ValueError as exc:
            problems.append(f"periods: {exc}")
    if len(set(spec.periods)) != len(spec.periods):
        problems.append("periods: each period once")
    return problems


def _variables(names: list[str], level: str, dictionary: Dictionary, where: str) -> list[str]:
    known = dictionary.variables
    problems = []
    for name in names:
        variable = known.get(name)
        if variable is None:
            problems.append(
                f"{where}: {name!r} is not a variable of the data dictionary "
                "(data/dictionary.yaml; see docs/extracts.md)"
            )
        elif variable.sensitivity == Sensitivity.direct_identifier:
            problems.append(
                f"{where}: {name!r} is a direct identifier ({', '.join(variable.sources)}); "
                "direct identifiers never leave the register: use person_key, the project's "
                "pseudonym"
            )
        elif name not in LEVEL_VARIABLES[level]:
            problems.append(
                f"{where}: {name!r} does not exist at level {level}; available: "
                + ", ".join(LEVEL_VARIABLES[level])
            )
    if len(set(names)) != len(names):
        problems.append(f"{where}: each variable once")
    return problems


def _table(table: TableSpec, dictionary: Dictionary) -> list[str]:
    where = f"tables.{table.name}"
    named = list(dict.fromkeys(table.dimensions + table.sum + table.mean))
    problems = _variables(named, table.unit, dictionary, where)
    if problems:
        return problems
    known = dictionary.variables
    problems += [
        f"{where}: {name!r} cannot be a dimension (one value per person or several per row)"
        for name in dict.fromkeys(table.dimensions)
        if name in NOT_DIMENSIONS
    ]
    problems += [
        f"{where}: {name!r} is not numeric and cannot be summed or averaged"
        for name in table.sum + table.mean
        if known[name].type not in NUMERIC
    ]
    if table.columns == table.rows:
        problems.append(f"{where}: rows and columns must be different variables")
    return problems


def _cohort(cohort: Cohort) -> list[str]:
    allowed = {
        "age_bands": [label for label, _, _ in AGE_BANDS],
        "sex": sorted(reference.code_list("kjonn")),
        "home_rhf": sorted(reference.rhf_names()),
        "treating_rhf": sorted(reference.rhf_names()),
        "care_level": sorted(reference.code_list("omsorgsniva")),
        "sector": sorted(set(reference.units()["sector"])),
        "ownership": ["private", "public"],
    }
    problems = [
        f"cohort.{field}: {value!r} is not one of {allowed[field]}"
        for field in allowed
        for value in getattr(cohort, field)
        if value not in allowed[field]
    ]
    for field, pattern in (
        ("main_condition", ICD10_PREFIX),
        ("any_condition", ICD10_PREFIX),
        ("procedures", PROCEDURE_PREFIX),
    ):
        problems += [
            f"cohort.{field}: {value!r} is not a code prefix (letters and digits, no dot)"
            for value in getattr(cohort, field)
            if not pattern.match(value)
        ]
    return problems


def check_periods(spec: Spec, home: Home) -> None:
    """Refuse periods the data do not cover (no unit's current submission reaches the end)."""
    ledger = load_ledger(home)
    problems = []
    for period in spec.parsed_periods:
        current = current_for_period(ledger, period)
        ords = current[current["message_type"] == "NPR_ORD"]
        if not ords["covers"].any():
            reach = ords["period_to"].max() if len(ords) else None
            data = f"the {period.year} data reach {reach}" if reach else f"no {period.year} data"
            problems.append(
                f"period {period} is outside the data: no submission covers it up to "
                f"{period.end} ({data})"
            )
    if problems:
        raise SpecError("spec refused:\n  " + "\n  ".join(problems))
