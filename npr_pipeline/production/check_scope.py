"""Which rows a period's GX suites check: every row of a build read from the lake; only the
daily units' rows of a build that carried its monthly rows over.

A correction by the daily route changes the daily units' rows alone (``snapshot._replace_daily``
carries the monthly rows over from the previous build). When that build's checks passed, the
monthly rows passed them as they are now, so running the suites over them again (~9 s on a
national period, and GX's import) buys nothing: the suites run over the daily units' rows in a
small file of their own, and the record (the verdict in the snapshot, each delivery version, the
results page) says so and names the build whose checks passed over the monthly rows.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import duckdb

from npr_pipeline import duck
from npr_pipeline.atomic import atomic_path
from npr_pipeline.store.lake import ORD_TABLES

CHECKED_TABLES = (*ORD_TABLES, "idents")
"""The filtered tables a scoped file holds the daily units' rows of (the suites' tables and
those their SQL joins within a submission: departments, patients, idents)."""


@dataclass(frozen=True)
class CheckScope:
    """What the checks of one build cover."""

    units: tuple[str, ...] | None
    """The daily units whose rows are checked; None: every row of the build."""
    monthly_checked_in: str | None = None
    """With ``units``: the build whose checks passed over the (carried) monthly rows."""

    def as_json(self) -> dict[str, object]:
        """The record a verdict and a delivery version keep."""
        if self.units is None:
            return {"rows": "all"}
        return {
            "rows": "daily units",
            "units": list(self.units),
            "monthly_rows_checked_in_build": self.monthly_checked_in,
        }

    def describe(self) -> str | None:
        """One line for the results page (None: every row, the page's default)."""
        if self.units is None:
            return None
        return (
            f"Bare dagsenhetenes rader ({len(self.units)} enheter) er kontrollert; "
            f"månedsradene er uendret og bestod kontrollene i bygg {self.monthly_checked_in}. "
            f"(Only the daily units' rows were checked; the monthly rows are unchanged and "
            f"passed the checks of build {self.monthly_checked_in}.)"
        )


def check_scope(snapshot: Path) -> CheckScope:
    """The scope of the snapshot's build (``build.monthly_checked_in`` and ``daily_input``)."""
    with duck.connect(snapshot, read_only=True) as con:
        columns = con.table("build").columns
        checked_in = (
            con.execute("SELECT monthly_checked_in FROM build").fetchone()[0]
            if "monthly_checked_in" in columns
            else None
        )
        if checked_in is None:
            return CheckScope(None)
        units = [u for (u,) in con.execute("SELECT unit FROM daily_input ORDER BY unit").fetchall()]
    return CheckScope(tuple(units), checked_in)


def scoped_file(snapshot: Path, scope: CheckScope) -> Path:
    """A DuckDB file beside the snapshot with the daily units' rows of its filtered tables and
    every reference table of the build (``ref_*``, which the suites' SQL joins), for GX to
    validate; rebuilt on every call."""
    assert scope.units is not None, "a build checked whole needs no scoped file"
    target = snapshot.with_name(f"{snapshot.stem}.daily-checks.duckdb")
    with atomic_path(target) as tmp:
        tmp.unlink()  # DuckDB refuses an existing empty file
        with duckdb.connect(str(tmp)) as con:
            con.execute(f"ATTACH '{snapshot}' AS build (READ_ONLY)")
            con.execute("CREATE TEMP TABLE _units AS SELECT unit FROM build.daily_input")
            for table in CHECKED_TABLES:
                con.execute(
                    f"CREATE TABLE {table} AS SELECT * FROM build.{table} "
                    "WHERE unit IN (SELECT unit FROM _units)"
                )
            references = con.execute(
                "SELECT table_name FROM duckdb_tables() WHERE database_name = 'build' "
                "AND starts_with(table_name, 'ref_')"
            ).fetchall()
            for (table,) in references:
                con.execute(f"CREATE TABLE {table} AS SELECT * FROM build.{table}")
            con.execute("DETACH build")
    return target
