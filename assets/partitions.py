"""Period partitions: months, tertials and the year, each a year-to-date period.

One partition per period key as the CLI writes it (``2026-03``, ``2026-T1``, ``2026``), for
every year the reporting calendar knows. Units are data inside a partition, never partitions.
"""

from __future__ import annotations

from dagster import StaticPartitionsDefinition

from npr_pipeline import reference


def period_keys(years: list[int]) -> list[str]:
    """Months, then tertials, then the year, for each year in order."""
    keys: list[str] = []
    for year in years:
        keys += [f"{year}-{m:02d}" for m in range(1, 13)]
        keys += [f"{year}-T{t}" for t in (1, 2, 3)]
        keys.append(str(year))
    return keys


period_partitions = StaticPartitionsDefinition(period_keys(reference.calendar_years()))
