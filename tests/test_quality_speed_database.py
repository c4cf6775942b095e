"""The per-period quality database is the period views, materialised.

``build_quality_database`` reads the lake once into tables so GX's many queries each scan one
table; the tables must hold exactly the rows of the views production reads.
"""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest

from npr_pipeline.home import Home
from npr_pipeline.periods import Period
from npr_pipeline.production.run import build_quality_database, open_period
from tests.intake_files import received_year

PERIOD_TABLES = (
    "excluded", "patients", "departments", "episodes", "diagnoses", "procedures", "referrals",
    "postponements", "idents", "raw_episodes", "raw_patients", "raw_idents",
)  # fmt: skip


@pytest.fixture(scope="module")
def received(defect_year: Path, tmp_path_factory: pytest.TempPathFactory) -> Home:
    """The defect year through intake (error records to exclude), registry imported."""
    return received_year(tmp_path_factory.mktemp("speed-db") / "home", defect_year)


def test_quality_database_holds_the_period_views_as_tables(received: Home) -> None:
    """Row for row, per month; at least one month has exclusions, which must stay applied."""
    with_exclusions = 0
    for month in ("2026-01", "2026-02", "2026-03"):
        period = Period.parse(month)
        path = build_quality_database(received, period)
        views, _ = open_period(received, period)
        stored = duckdb.connect(str(path), read_only=True)
        try:
            tables = {
                t for (t,) in stored.execute("SELECT table_name FROM duckdb_tables()").fetchall()
            }
            assert set(PERIOD_TABLES) <= tables
            assert not stored.execute("SELECT 1 FROM duckdb_views() WHERE NOT internal").fetchall()
            for table in PERIOD_TABLES:
                query = f"SELECT * FROM {table} ORDER BY ALL"
                assert stored.execute(query).fetchall() == views.execute(query).fetchall(), table
            excluded, kept, raw = stored.execute(
                "SELECT (SELECT count(*) FROM excluded), (SELECT count(*) FROM episodes), "
                "(SELECT count(*) FROM raw_episodes)"
            ).fetchall()[0]
        finally:
            stored.close()
            views.close()
        assert kept > 0
        with_exclusions += excluded > 0 and kept < raw
    assert with_exclusions, "no month with excluded episodes: the exclusions are not exercised"
