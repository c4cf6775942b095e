"""The check catalogue: ``expectations/*.yaml`` loaded and validated into typed checks.

Checks are data (the DataQualityDashboard way) so the rules a clinic's coordinator reads, the
SQL that finds violations, the GX suites and the docs page all come from one place.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field, model_validator

from npr_pipeline import reference, yamlfile
from npr_pipeline.messages import LINE_COLUMN, all_types
from npr_pipeline.store.lake import KEYS, TABLES

CATALOGUE_DIR = Path(__file__).resolve().parents[2] / "expectations"
# Checks of the report types' tables (KPP, forløp, ...): run on each received file, apart from
# the monthly catalogue (its GX suites and engines cover the monthly tables only).
REPORTS_DIR = CATALOGUE_DIR / "reports"
REPORT_CONTEXT = ("submission_id", "unit")
EXPECTATIONS = (
    "expect_column_values_to_not_be_null",
    "expect_column_values_to_be_in_set",
    "expect_column_values_to_be_between",
    "expect_column_pair_values_a_to_be_greater_than_b",
    "expect_column_values_to_match_regex",
    "expect_compound_columns_to_be_unique",
    "unexpected_rows",
    "vault_rows",
    "python_rule",
)


class Check(BaseModel):
    """One rule: what it checks, how bad a failure is, and what the unit should do."""

    id: str = Field(pattern=r"^[a-z][a-z0-9_]+$")
    table: str
    record: list[str]
    category: Literal["conformance", "completeness", "plausibility"]
    severity: Literal["error", "warning"]
    threshold: float = Field(default=0.0, ge=0.0, le=1.0)
    expectation: Literal[EXPECTATIONS]  # type: ignore[valid-type]
    kwargs: dict[str, Any] = Field(default_factory=dict)
    message: str
    fix: str
    note: str | None = None

    def tolerates(self, unexpected: int, rows: int) -> bool:
        """The catalogue's rule, the same in both engines: no failing row, or (threshold > 0) a
        share of failing rows, counted against all rows of the table, at most the threshold."""
        if unexpected == 0:
            return True
        return self.threshold > 0 and rows > 0 and unexpected / rows <= self.threshold

    @model_validator(mode="after")
    def _columns_exist(self) -> Check:
        columns = table_columns(self.table)
        named = [self.kwargs.get(k) for k in ("column", "column_A", "column_B")]
        named += list(self.kwargs.get("column_list", [])) + self.record
        unknown = [c for c in named if c and c not in columns]
        if unknown:
            raise ValueError(f"{self.id}: unknown column(s) {unknown} in table {self.table}")
        return self


class _TableFile(BaseModel):
    table: str
    record: list[str]
    checks: list[dict[str, Any]]


@cache
def load_catalogue(folder: Path | None = None) -> tuple[Check, ...]:
    """Every check of every table file; ids must be unique across the catalogue."""
    checks: list[Check] = []
    for path in sorted((folder or CATALOGUE_DIR).glob("*.yaml")):
        spec = _TableFile.model_validate(yamlfile.safe_load(path.read_text(encoding="utf-8")))
        if not table_columns(spec.table):
            raise ValueError(f"{path.name}: unknown table {spec.table}")
        for raw in spec.checks:
            checks.append(Check.model_validate({"table": spec.table, "record": spec.record} | raw))
    ids = [c.id for c in checks]
    duplicates = sorted({i for i in ids if ids.count(i) > 1})
    if duplicates:
        raise ValueError(f"duplicate check ids: {duplicates}")
    return tuple(checks)


def table_columns(table: str) -> set[str]:
    """The columns a check of ``table`` may name: a monthly lake table's, or a report type's
    table (the mapping's columns, the reader's context and ``line``); empty if unknown."""
    if table in TABLES:
        return {name for name, _ in KEYS + TABLES[table]}
    for mtype in all_types():
        for spec in mtype.tables:
            if spec.name == table and mtype.is_report:
                names = {name for name, _ in spec.all_columns()}
                return names | set(REPORT_CONTEXT) | {LINE_COLUMN}
    return set()


def resolved_kwargs(check: Check) -> dict[str, Any]:
    """kwargs with ``code_list`` expanded into ``value_set`` (codes as strings)."""
    kwargs = dict(check.kwargs)
    if "code_list" in kwargs:
        kwargs["value_set"] = list(_codes(kwargs.pop("code_list")))
    return kwargs


@cache
def _codes(code_list: str) -> tuple[str, ...]:
    """A code list's codes, sorted, once per process (its source is cached in ``reference``):
    every batch of the content checks writes its rules' SQL, and building each list's codes
    through pandas again cost ~20 ms a batch."""
    return tuple(sorted(reference.code_list(code_list)))


def by_id(check_id: str) -> Check:
    """One check of the catalogue."""
    for check in load_catalogue():
        if check.id == check_id:
            return check
    raise KeyError(check_id)
