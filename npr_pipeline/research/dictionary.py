"""The data dictionary (``data/dictionary.yaml``), loaded and checked with pydantic.

One file documents every lake, vault and delivery column once with a sensitivity class; the
extract specs are validated against it and docs/extracts.md is generated from it, so what the
code allows and what the documentation says cannot drift apart.
"""

from __future__ import annotations

from enum import StrEnum
from functools import cache
from pathlib import Path

from pydantic import BaseModel, ConfigDict, model_validator

from npr_pipeline import yamlfile

DICTIONARY = Path(__file__).resolve().parents[2] / "data" / "dictionary.yaml"
DATE_TYPES = ("date", "timestamp")


class Sensitivity(StrEnum):
    """How much a value says about who a person is."""

    direct_identifier = "direct_identifier"
    indirect_identifier = "indirect_identifier"
    clinical = "clinical"
    administrative = "administrative"


class ColumnType(StrEnum):
    string = "string"
    integer = "integer"
    float = "float"
    decimal = "decimal"  # exact: money (DECIMAL(18, 2)) and rates
    boolean = "boolean"
    date = "date"
    timestamp = "timestamp"


class Column(BaseModel):
    """One stored column: where it lives, what it means, how sensitive it is."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    table: str
    store: str
    column: str
    type: ColumnType
    sensitivity: Sensitivity
    variable: str | None = None
    description: str


class Derived(BaseModel):
    """An extract variable computed from columns rather than copied from one."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    variable: str
    type: ColumnType
    sensitivity: Sensitivity
    sources: tuple[str, ...]
    description: str


class Variable(BaseModel):
    """What an extract spec can name: a column's variable or a derived one."""

    model_config = ConfigDict(frozen=True)

    name: str
    type: ColumnType
    sensitivity: Sensitivity
    sources: tuple[str, ...]
    description: str

    @property
    def is_date(self) -> bool:
        return self.type in DATE_TYPES


class Dictionary(BaseModel):
    """The whole dictionary; construction fails on duplicates or dangling sources."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    columns: tuple[Column, ...]
    derived: tuple[Derived, ...]
    tables: dict[str, str] = {}
    """Warehouse tables: what each one holds (its ``COMMENT ON TABLE``)."""

    @model_validator(mode="after")
    def _consistent(self) -> Dictionary:
        keys = [f"{c.table}.{c.column}" for c in self.columns]
        duplicates = sorted({k for k in keys if keys.count(k) > 1})
        if duplicates:
            raise ValueError(f"columns documented more than once: {duplicates}")
        names = [c.variable for c in self.columns if c.variable] + [
            d.variable for d in self.derived
        ]
        if len(names) != len(set(names)):
            raise ValueError(f"variable names used more than once: {sorted(names)}")
        known = set(keys)
        dangling = sorted({s for d in self.derived for s in d.sources} - known)
        if dangling:
            raise ValueError(f"derived variables name undocumented columns: {dangling}")
        described = {c.table for c in self.columns}
        unknown = sorted(set(self.tables) - described)
        if unknown:
            raise ValueError(f"table descriptions for tables without columns: {unknown}")
        return self

    @property
    def variables(self) -> dict[str, Variable]:
        """Every extract variable by name, with its sensitivity."""
        found = {
            c.variable: Variable(
                name=c.variable,
                type=c.type,
                sensitivity=c.sensitivity,
                sources=(f"{c.table}.{c.column}",),
                description=c.description,
            )
            for c in self.columns
            if c.variable
        }
        for d in self.derived:
            found[d.variable] = Variable(
                name=d.variable,
                type=d.type,
                sensitivity=d.sensitivity,
                sources=d.sources,
                description=d.description,
            )
        return found


def load_dictionary(path: Path = DICTIONARY) -> Dictionary:
    """Read and validate a dictionary file."""
    return Dictionary.model_validate(yamlfile.safe_load(path.read_text(encoding="utf-8")))


@cache
def dictionary() -> Dictionary:
    """The repository's dictionary, read once per process."""
    return load_dictionary()
