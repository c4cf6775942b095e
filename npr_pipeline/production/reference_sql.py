"""Reference data as DuckDB tables for the production rules: units, rates, DRG, regions.

Rates and DRG weights reach DuckDB as text and are cast to DECIMAL there: money is computed
exactly (RULES.md), never through a binary floating-point value.
"""

from __future__ import annotations

import duckdb
import pandas as pd

from npr_pipeline import reference

DECIMALS = {
    "ref_rates": {
        "unit_price_nok": "DECIMAL(18, 2)",
        "refund_share": "DECIMAL(9, 4)",
        "settlement_share": "DECIMAL(9, 4)",
    },
    "ref_drg": {"weight": "DECIMAL(18, 4)"},
}


def register(con: duckdb.DuckDBPyConnection, registry: pd.DataFrame, year: int) -> None:
    """``ref_units``, ``ref_rates``, ``ref_drg``, ``ref_municipalities`` (the home
    region of a komNrHjem: listed numbers only, never guessed from the county), ``ref_rhf``,
    exclusions."""
    units = registry.astype(str)[
        ["reshID", "name", "unit_type", "parent_trust", "rhf", "ownership", "sector", "fagomrade"]
    ]
    rates = reference.isf_rates(year).copy()
    drg = reference.drg_table()
    drg = drg[drg["valid_year"] == drg.loc[drg["valid_year"] <= year, "valid_year"].max()]
    municipalities = reference.municipalities()[["komnr", "rhf_code", "kind"]]
    rhf = pd.DataFrame(sorted(reference.rhf_names().items()), columns=["rhf_code", "name"])
    exclusions = reference.kjernejournal_exclusions()[["kind", "value"]]
    for name, frame in (
        ("ref_units", units),
        ("ref_rates", rates),
        ("ref_drg", drg),
        ("ref_municipalities", municipalities),
        ("ref_rhf", rhf),
        ("ref_kj_exclusions", exclusions),
    ):
        exact = DECIMALS.get(name, {})
        frame = frame.astype(dict.fromkeys(exact, str))
        casts = ", ".join(f'CAST("{c}" AS {t}) AS "{c}"' for c, t in exact.items())
        select = f"* REPLACE ({casts})" if casts else "*"
        con.register(f"_{name}", frame)
        con.execute(f"CREATE OR REPLACE TEMP TABLE {name} AS SELECT {select} FROM _{name}")
        con.unregister(f"_{name}")
