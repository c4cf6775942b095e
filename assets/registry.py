"""Core asset: the unit registry in the warehouse, from the newest imported version."""

import pandas as pd
from dagster import (
    AssetExecutionContext,
    AutomationCondition,
    MaterializeResult,
    MetadataValue,
    asset,
)

from assets.resources import HomeResource
from npr_pipeline.registry import current_registry
from npr_pipeline.warehouse import replace_table, writer

REGISTRY_COLUMNS = {  # warehouse column: (registry file column, SQL type)
    "reshID": ("reshID", "VARCHAR"),
    "name": ("name", "VARCHAR"),
    "unit_type": ("unit_type", "VARCHAR"),
    "rhf": ("rhf", "VARCHAR"),
    "trust": ("parent_trust", "VARCHAR"),
    "ownership": ("ownership", "VARCHAR"),
    "financing": ("financing", "VARCHAR"),
    "route": ("route", "VARCHAR"),
    "sector": ("sector", "VARCHAR"),
    "fagomrade": ("fagomrade", "VARCHAR"),
    "komnr": ("komnr", "VARCHAR"),
    "orgnr": ("orgnr", "VARCHAR"),
    "herID": ("herID", "VARCHAR"),
    "isf_agreement": ("isf_agreement", "BOOLEAN"),
    "message_types": ("message_types", "VARCHAR"),
    "size_weight": ("size_weight", "DOUBLE"),
    "valid_from": ("valid_from", "DATE"),
    "valid_to": ("valid_to", "DATE"),
    "source": ("source", "VARCHAR"),
}
"""The ``registry`` table an analyst reads: typed (flags BOOLEAN, dates DATE), the trust under
its plain name, and the reporting route (``monthly`` for a registry that does not say)."""


def registry_table(units: pd.DataFrame) -> pd.DataFrame:
    """The registry file's rows (all text) as the warehouse's typed ``registry`` table."""
    frame = pd.DataFrame(index=units.index)
    for column, (source, sql_type) in REGISTRY_COLUMNS.items():
        if source in units:
            values = units[source].astype(str).str.strip()
        else:
            values = pd.Series("monthly" if column == "route" else "", index=units.index)
        if sql_type == "BOOLEAN":
            frame[column] = values.str.lower().map({"true": True, "false": False}).astype("boolean")
        elif sql_type == "DOUBLE":
            frame[column] = pd.to_numeric(values.replace("", None), errors="coerce")
        elif sql_type == "DATE":
            frame[column] = pd.to_datetime(values.replace("", None), errors="coerce").dt.date
        else:
            frame[column] = values.replace("", None).astype("string")
    if "route" in frame:
        frame["route"] = frame["route"].fillna("monthly")
    return frame.reset_index(drop=True)


@asset(
    key_prefix="core",
    group_name="core",
    pool="warehouse",
    # Declarative where it fits: the registry copy refreshes itself every morning.
    automation_condition=AutomationCondition.on_cron("0 5 * * *", "Europe/Oslo"),
    description="Reporting units (RESH, name, RHF, trust, ownership, financing, route, "
    "obligations) from the newest imported registry, as table registry in warehouse.duckdb.",
)
def unit_registry(context: AssetExecutionContext, home: HomeResource) -> MaterializeResult:
    """Copy the current registry into ``warehouse.duckdb`` as table ``registry``."""
    frame = registry_table(current_registry(home.home()))
    with writer(home.home()) as con:
        replace_table(con, "registry", frame)
        casts = ", ".join(f'CAST("{c}" AS {t}) AS "{c}"' for c, (_, t) in REGISTRY_COLUMNS.items())
        con.execute(f"CREATE OR REPLACE TABLE registry AS SELECT {casts} FROM registry")
    context.log.info("registry: %d units", len(frame))
    return MaterializeResult(
        metadata={
            "units": len(frame),
            "by_type": MetadataValue.json(
                {str(k): int(v) for k, v in frame["unit_type"].value_counts().items()}
            ),
        }
    )
