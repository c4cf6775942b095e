"""Reference data as DuckDB tables for the production rules: units, rates, DRG, regions."""

from __future__ import annotations

import duckdb
import pandas as pd

from npr_pipeline import reference


def register(con: duckdb.DuckDBPyConnection, registry: pd.DataFrame, year: int) -> None:
    """``ref_units``, ``ref_rates``, ``ref_drg``, ``ref_county_rhf``, ``ref_rhf``, exclusions."""
    units = registry.astype(str)[
        ["reshID", "name", "unit_type", "parent_trust", "rhf", "ownership", "sector", "fagomrade"]
    ]
    rates = reference.isf_rates(year).copy()
    drg = reference.drg_table()
    drg = drg[drg["valid_year"] == drg.loc[drg["valid_year"] <= year, "valid_year"].max()]
    counties = pd.DataFrame(
        sorted(reference.county_rhf().items()), columns=["county", "rhf"]
    ).astype(str)
    rhf = pd.DataFrame(sorted(reference.rhf_names().items()), columns=["rhf_code", "name"])
    exclusions = reference.kjernejournal_exclusions()[["kind", "value"]]
    for name, frame in (
        ("ref_units", units),
        ("ref_rates", rates),
        ("ref_drg", drg),
        ("ref_county_rhf", counties),
        ("ref_rhf", rhf),
        ("ref_kj_exclusions", exclusions),
    ):
        con.register(f"_{name}", frame)
        con.execute(f"CREATE OR REPLACE TEMP TABLE {name} AS SELECT * FROM _{name}")
        con.unregister(f"_{name}")
