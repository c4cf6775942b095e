"""The Dagster code location loads, and its assets run for real."""

from __future__ import annotations

from pathlib import Path

import duckdb
from dagster import materialize

from assets.definitions import defs
from assets.partitions import period_keys
from assets.registry import unit_registry
from assets.resources import HomeResource
from npr_pipeline.home import Home
from tests.intake_files import prepare_test_home


def test_definitions_load() -> None:
    repo = defs.get_repository_def()
    keys = {key.to_user_string() for key in repo.asset_graph.get_all_asset_keys()}
    assert "core/unit_registry" in keys


def test_period_keys_cover_months_tertials_and_year() -> None:
    keys = period_keys([2026])
    assert keys[:2] == ["2026-01", "2026-02"]
    assert {"2026-T1", "2026-T2", "2026-T3", "2026"} <= set(keys)
    assert len(keys) == 16


def test_registry_asset_writes_the_warehouse(tmp_path: Path) -> None:
    prepare_test_home(Home(root=tmp_path))  # the bundled synthetic registry, imported
    result = materialize([unit_registry], resources={"home": HomeResource(root=str(tmp_path))})
    assert result.success
    con = duckdb.connect(str(tmp_path / "warehouse.duckdb"), read_only=True)
    count = con.execute("SELECT count(*) FROM registry").fetchone()[0]
    assert 1800 <= count <= 2300


def test_intake_asset_receives_an_inbox(tmp_path: Path, small_year: Path) -> None:
    from assets.intake import raw_submissions

    prepare_test_home(Home(root=tmp_path / "home"), small_year / "registry.csv")
    home = HomeResource(root=str(tmp_path / "home"))
    config = {"ops": {"raw__submissions": {"config": {"inbox": str(small_year / "inbox")}}}}
    result = materialize([raw_submissions], resources={"home": home}, run_config=config)
    assert result.success
    materialization = result.asset_materializations_for_node("raw__submissions")[0]
    files = len(list((small_year / "inbox").iterdir()))  # ord, ide and the report files
    assert materialization.metadata["accepted"].value == files
    assert materialization.metadata["rejected"].value == 0
    again = materialize([raw_submissions], resources={"home": home}, run_config=config)
    assert (
        again.asset_materializations_for_node("raw__submissions")[0].metadata["duplicates"].value
        == files
    )
    _check_lake_partitions(home, len(list((small_year / "inbox").glob("*_kpp_*-04-30.xml"))))


def _check_lake_partitions(home: HomeResource, reports: int) -> None:
    """The period-partitioned lake asset accounts for each period's own files: a month holds
    that month's ord and ide of six units, the tertial all four months and the ``reports``
    report files of the tertial (the small year's trust site sends KPP)."""
    from assets.intake import raw_lake

    found = {}
    for key in ("2026-03", "2026-T1"):
        result = materialize([raw_lake], resources={"home": home}, partition_key=key)
        found[key] = result.asset_materializations_for_node("raw__lake")[0].metadata
    assert found["2026-03"]["files"].value == 12
    assert found["2026-03"]["units"].value == 6
    assert found["2026-T1"]["accepted"].value == 48 + reports
    assert 0 < found["2026-03"]["episodes"].value < found["2026-T1"]["episodes"].value


def test_inbox_sensor_requests_a_run_only_for_new_files(tmp_path: Path, small_year: Path) -> None:
    import shutil

    from dagster import build_sensor_context

    from assets.intake import inbox_sensor

    home = HomeResource(root=str(tmp_path / "home"))
    inbox = tmp_path / "home" / "inbox"
    inbox.mkdir(parents=True)
    first = sorted((small_year / "inbox").iterdir())[0]
    shutil.copy(first, inbox / first.name)
    context = build_sensor_context(resources={"home": home})
    tick = inbox_sensor.evaluate_tick(context)
    assert len(tick.run_requests) == 1 and tick.run_requests[0].run_key
    again = inbox_sensor.evaluate_tick(
        build_sensor_context(resources={"home": home}, cursor=tick.cursor)
    )
    assert not again.run_requests and again.skip_message == "inbox unchanged"


def test_current_submissions_per_period(tmp_path: Path, small_year: Path) -> None:
    from assets.core import current_submissions
    from assets.intake import raw_submissions

    prepare_test_home(Home(root=tmp_path / "home"), small_year / "registry.csv")
    home = HomeResource(root=str(tmp_path / "home"))
    config = {"ops": {"raw__submissions": {"config": {"inbox": str(small_year / "inbox")}}}}
    assert materialize([raw_submissions], resources={"home": home}, run_config=config).success
    for period in ("2026-T1", "2026-05"):
        result = materialize([current_submissions], resources={"home": home}, partition_key=period)
        assert result.success
    con = duckdb.connect(str(tmp_path / "home" / "warehouse.duckdb"), read_only=True)
    rows = dict(
        con.execute(
            "SELECT period, count(*) FILTER (WHERE covers) FROM current_submissions GROUP BY 1"
        ).fetchall()
    )
    assert rows == {"2026-T1": 12, "2026-05": 0}  # 6 units x (ord, ide); April is the last month


def test_production_schedule_and_sensor_are_defined() -> None:
    repo = defs.get_repository_def()
    assert {s.name for s in repo.schedule_defs} == {"deadline_schedule"}
    assert {s.name for s in repo.sensor_defs} >= {"inbox_sensor", "completeness_sensor"}
    checks = {key.name for key in repo.asset_graph.asset_check_keys}
    assert {
        "all_obligated_units_delivered",
        "no_error_findings_after_exclusion",
        "excluded_share_per_unit",
    } <= checks


def test_deadline_schedule_requests_the_period_on_its_deadline() -> None:
    from datetime import datetime
    from zoneinfo import ZoneInfo

    from dagster import build_schedule_context

    from assets.automation import deadline_schedule

    repo = defs.get_repository_def()
    on_deadline = build_schedule_context(
        scheduled_execution_time=datetime(2026, 5, 5, 7, tzinfo=ZoneInfo("Europe/Oslo")),
        repository_def=repo,
    )
    requests = deadline_schedule.evaluate_tick(on_deadline).run_requests
    assert {r.partition_key for r in requests} >= {"2026-T1", "2026-04"}
    quiet = build_schedule_context(
        scheduled_execution_time=datetime(2026, 5, 6, 7, tzinfo=ZoneInfo("Europe/Oslo")),
        repository_def=repo,
    )
    assert not deadline_schedule.evaluate_tick(quiet).run_requests


def test_everything_in_the_code_location_has_a_description() -> None:
    """The UI never says "No description provided": assets, checks, schedules, sensors, jobs."""
    repo = defs.get_repository_def()
    graph = repo.asset_graph
    missing = [f"asset {n.key.to_user_string()}" for n in graph.asset_nodes if not n.description]
    missing += [
        f"check {key.asset_key.to_user_string()}:{key.name}"
        for key in graph.asset_check_keys
        if not graph.get_check_spec(key).description
    ]
    missing += [f"schedule {s.name}" for s in repo.schedule_defs if not s.description]
    missing += [f"sensor {s.name}" for s in repo.sensor_defs if not s.description]
    missing += [
        f"job {j.name}"
        for j in repo.get_all_jobs()
        if not j.name.startswith("__") and not j.description
    ]
    assert not missing, missing
    assert {s.name for s in repo.sensor_defs} >= {"inbox_sensor", "completeness_sensor"}
