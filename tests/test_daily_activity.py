"""The preliminary daily activity (issue 13, near real time): a Dagster asset that the intake
job refreshes from the consolidated state, marked preliminary, with its freshness policy, and
kept out of the official deliveries. Real events, real Delta, real DuckDB, real ``materialize``."""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

from dagster import AssetKey, materialize

from assets.definitions import defs
from assets.intake import intake_job
from assets.preliminary import daily_activity
from assets.resources import HomeResource
from npr_pipeline.duck import has_table
from npr_pipeline.warehouse import reader
from tests.daily_events import kontakt
from tests.daily_units import Unit, daily_home

AT = "2026-03-20T10:00:00"


def _activity(home) -> list[tuple]:
    with reader(home) as con:
        assert not has_table(con, "delivery_versions")  # nothing official was written
        return con.execute(
            "SELECT day, rhf, fagomrade, ownership, financing, contacts, preliminary, as_of_batch "
            "FROM daily_activity ORDER BY ALL"
        ).fetchall()


def test_daily_activity_counts_the_state_after_each_batch(tmp_path: Path) -> None:
    home = daily_home(tmp_path)
    unit = Unit(home, tmp_path / "in")
    resources = {"home": HomeResource(root=str(home.root))}
    first = unit.send(("kontakt", [
        kontakt("K-1", "N", AT, innDatoTid="2026-03-02T08:00:00", fagomrade="050", debitor="1"),
        kontakt("K-2", "N", AT, patient="P-2", innDatoTid="2026-03-02T09:00:00",
                fagomrade="050", debitor="30"),
        kontakt("K-3", "N", AT, patient="P-3", innDatoTid="2026-03-03T09:00:00",
                fagomrade="110", debitor="1"),
    ]))  # fmt: skip
    result = materialize([daily_activity], resources=resources)
    assert result.success
    march = date(2026, 3, 2)
    assert _activity(home) == [
        (march, "HSO", "050", "public", "private", 1, True, first),
        (march, "HSO", "050", "public", "public", 1, True, first),
        (march + timedelta(days=1), "HSO", "110", "public", "public", 1, True, first),
    ]
    (event,) = result.asset_materializations_for_node("preliminary__daily_activity")
    assert event.metadata["preliminary"].value is True
    assert event.metadata["contacts"].value == 3 and event.metadata["as_of_batch"].value == first
    # a cancellation in the next batch: the next refresh no longer counts the contact
    later = unit.send(("kontakt", [kontakt("K-3", "C", "2026-03-21T10:00:00")]))
    assert materialize([daily_activity], resources=resources).success
    assert [row[2:6] for row in _activity(home)] == [
        ("050", "public", "private", 1),
        ("050", "public", "public", 1),
    ]
    assert {row[7] for row in _activity(home)} == {later}
    with reader(home) as con:  # an analyst's client shows what each column means
        comments = con.execute(
            "SELECT column_name, comment FROM duckdb_columns() WHERE table_name = 'daily_activity'"
        ).fetchall()
        (table_comment,) = con.execute(
            "SELECT comment FROM duckdb_tables() WHERE table_name = 'daily_activity'"
        ).fetchone()
    assert table_comment.startswith("Preliminary")
    assert [column for column, comment in comments if not comment] == []


def test_the_intake_job_refreshes_it_and_its_freshness_is_declared() -> None:
    key = AssetKey(["preliminary", "daily_activity"])
    assert key in intake_job.selection.resolve(defs.resolve_asset_graph())
    spec = defs.resolve_assets_def(key).specs_by_key[key]
    assert spec.freshness_policy is not None
    assert "PRELIMINARY" in (spec.description or "")
