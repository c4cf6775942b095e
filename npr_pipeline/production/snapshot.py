"""The period's input snapshot: what the blocking checks validate is what production reads.

``build_snapshot`` reads the period's current covering submissions from the lake once
(exclusions applied, the same relations as ``register_period_views``) into one DuckDB file,
with the submissions it was built from. The GX suites and the blocking checks run on it, and
every production step of the run reads it read-only. Two reasons:

- correctness: a submission received between the checks and a step cannot reach a delivery
  unchecked; a step publishes exactly the rows the checks passed, with their lineage;
- speed: the lake holds one small Parquet file per table and submission (~16,000 for a
  national month); the snapshot pays for reading them once per run instead of once per
  GX query and once per step.

The snapshot is built from the completeness gate's verdict (``gate.judge_period``) and stores
it: per step the gate, the missing units and the override if any (who, when, why), and the
exact current submissions it judged (``gate_judged``, with which were included). Each build
has an id; a step reads a build only with a passing quality verdict and an open (or overridden)
gate for that step, whoever starts the step: a whole run, an out/<step> alone from the UI, a
re-execution or a call from Python. The override belongs to the build, not to a Dagster run,
so a re-execution of a step publishes under the same override.

The file is rebuilt at the start of every run (replaced atomically, so a step still reading
the previous one is not disturbed) and can always be rebuilt: it is not a record. A rebuild
whose monthly part would be read from exactly what the previous build read (the same monthly
submissions, catalogue and code: ``monthly_key``) starts from a copy of the previous file and
replaces only the daily units' rows (raw, filtered, and ISF's grading of them) and everything
judged per build: a correction by the daily route (issue 13) does not read ~16,000 unchanged
lake files again nor filter or grade the monthly rows again, and its checks run over the daily
rows alone when the copied build's passed (:mod:`.check_scope`).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import uuid
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import duckdb
import pandas as pd

from npr_pipeline import duck, reference
from npr_pipeline.atomic import atomic_path
from npr_pipeline.home import Home
from npr_pipeline.periods import Period
from npr_pipeline.production import isf, reference_sql
from npr_pipeline.production.daily_gate import daily_gate
from npr_pipeline.production.daily_inputs import received_date, state_id
from npr_pipeline.production.gate import GateVerdict, Override, judge_period
from npr_pipeline.production.inputs import (
    PeriodInput,
    add_daily,
    filtered_selects,
    register_period_views,
)
from npr_pipeline.provenance import catalogue_sha256, package_version
from npr_pipeline.quality import reference_tables
from npr_pipeline.registry import current_registry
from npr_pipeline.store.lake import ORD_TABLES, versions
from npr_pipeline.store.ledger import load_ledger
from npr_pipeline.warehouse import replace_table

LINEAGE_COLUMNS = ["submission_id", "checksum", "unit", "message_type", "file"]
SNAPSHOT_VERSION = 2
"""The version of the code that makes a snapshot's monthly rows (this module and
:mod:`.inputs`: which rows are read, filtered and excluded). Part of ``monthly_key``: raise it
with any change to what a build from the lake would hold, or a rebuild would carry over rows
the old code made (2: ISF's graded stays and contacts, ``isf.GRADED``, are part of it)."""
DAILY_UNITS = "_daily_units"
"""The relation (``unit``) of the daily units a carried build replaces the rows of."""


class SnapshotNotReady(RuntimeError):
    """A step asked for a period whose snapshot is missing or did not pass the checks."""


class GateClosed(SnapshotNotReady):
    """A step asked for a snapshot whose completeness gate for it is closed (or unjudged)."""


def snapshot_path(home: Home, period: Period) -> Path:
    """Where the period's snapshot lives (replaced on every build)."""
    return home.root / "period_inputs" / f"{period}.duckdb"


def sweep_dead_builds(path: Path) -> list[Path]:
    """Remove the temporary files of builds of the snapshot at ``path`` whose process is gone
    (``.<name>.<pid>.<n>.tmp`` and DuckDB's ``.wal`` beside it); return them.

    A run killed while building leaves them, each up to the snapshot's size, and nothing else
    ever would remove them (found by the kill -9 campaign of session 18). A live process's stay:
    two runs of one period may build side by side."""
    prefix = f".{path.name}."
    swept = []
    for leftover in sorted(path.parent.glob(f"{prefix}*.tmp*")):
        pid = leftover.name[len(prefix) :].split(".", 1)[0]
        if pid.isdigit() and not _alive(int(pid)):
            leftover.unlink(missing_ok=True)
            swept.append(leftover)
    return swept


def _alive(pid: int) -> bool:
    """Whether a process ``pid`` runs on this host (one of another user's counts)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # it exists, another user's
        pass
    return True


def build_snapshot(home: Home, period: Period, override: Override | None = None) -> str:
    """Judge the period's gates, then materialise what they let through into one file.

    The input tables, reference tables and lineage hold exactly the submissions the gate
    verdict included (``judge_period``); the verdict and the override are stored beside them.
    Raises ``gate.OverrideError`` for an override naming units that are not missing.

    Returns the build's id, which ``record_verdict`` must be given: two runs of one period
    (a sensor and a schedule, say) each replace the file, and a verdict belongs to the build
    it judged.
    """
    registry = current_registry(home)
    daily = daily_gate(home, registry, period)  # its batch: the high-water mark the file reads
    ledger = load_ledger(home)
    verdict = judge_period(registry, ledger, period, date.today(), override, daily)
    build_id, key = uuid.uuid4().hex, monthly_key(verdict.inputs)
    # for audit: the monthly tables' Delta versions as the build began (their submissions'
    # rows, named in the lineage, never change, so the lineage alone rebuilds the input)
    lake_versions = versions(home)
    path = snapshot_path(home, period)
    sweep_dead_builds(path)
    with atomic_path(path) as tmp:
        tmp.unlink()  # DuckDB refuses an existing empty file
        carried = _carry_over(path, tmp, key)
        con = duck.connect(tmp)
        try:
            if carried is None:
                # no fødselsnummer in the file: kjernejournal reads them from the vault
                register_period_views(
                    con, home, verdict.inputs, materialise=True, identity_numbers=False
                )
            else:
                _replace_daily(con, home, verdict.inputs, carried)
            _grade(con, registry, period, carried is not None)
            reference_tables.register(con, persistent=True)
            register_lineage(con, verdict.inputs)
            _register_daily(con, home, verdict.inputs, ledger)
            _register_gate(con, verdict)
            con.execute(
                "CREATE OR REPLACE TABLE build AS SELECT ? AS build_id, now() AS at, "
                "? AS daily_batch, ? AS lake_versions, ? AS monthly_key, ? AS carried, "
                "CAST(? AS VARCHAR) AS monthly_checked_in",
                [
                    build_id,
                    verdict.inputs.daily.batch,
                    json.dumps(lake_versions),
                    key,
                    carried is not None,
                    carried and carried.checked_in,
                ],  # fmt: skip
            )
        finally:
            con.close()
    return build_id


def monthly_key(inputs: PeriodInput) -> str:
    """What the snapshot's monthly rows are a function of: the period, the monthly submissions
    (ids and checksums of their archived bytes), the check catalogue (their violations files)
    and the code and reference data that shape them (``SNAPSHOT_VERSION``, the package version
    and the DRG grouper table ISF's grading in the snapshot uses)."""
    digest = hashlib.sha256()
    monthly = inputs.submissions[["submission_id", "checksum"]].astype(str)
    for part in (
        str(inputs.period),
        *sorted(monthly["submission_id"] + ":" + monthly["checksum"]),
        catalogue_sha256(),
        package_version(),
        f"snapshot {SNAPSHOT_VERSION}",
        reference.drg_table().to_csv(index=False),  # ISF's grading (``_grade``)
    ):
        digest.update(part.encode() + b"\0")
    return digest.hexdigest()


@dataclass(frozen=True)
class Carried:
    """What a build copied from the previous one."""

    units: list[str]
    """The daily units the previous build read (their rows are replaced)."""
    checked_in: str | None
    """The build whose checks passed over the monthly rows now carried (the previous build, or
    the one it carried them from); None when the previous build's checks did not pass (or never
    ran): then the new build is checked whole."""


def _carry_over(path: Path, tmp: Path, key: str) -> Carried | None:
    """Copy the previous build to ``tmp`` if its monthly part has ``key``; what it carries, or
    None (nothing copied: build from the lake)."""
    if not path.exists() or path.with_name(path.name + ".wal").exists():
        return None
    try:
        con = duck.connect(path, read_only=True)
    except duckdb.Error:
        return None
    try:
        if not duck.has_table(con, "build") or "monthly_key" not in con.table("build").columns:
            return None
        build = con.execute("SELECT * FROM build").df().iloc[0]
        if build["monthly_key"] != key:
            return None
        units = [u for (u,) in con.execute("SELECT unit FROM daily_input").fetchall()]
        checked_in = None
        if (
            duck.has_table(con, "verdict")
            and con.execute("SELECT passed FROM verdict").fetchone()[0]
        ):
            previous = build.get("monthly_checked_in")
            checked_in = previous if isinstance(previous, str) else build["build_id"]
    finally:
        con.close()
    shutil.copyfile(path, tmp)
    return Carried(units, checked_in)


def _replace_daily(
    con: duckdb.DuckDBPyConnection, home: Home, inputs: PeriodInput, carried: Carried
) -> None:
    """In a copy of the previous build: drop its verdict and its daily units' rows and
    findings, add the daily units' state as known now, and filter again the rows of the daily
    units alone (of the previous build and of this one): the monthly units' filtered rows depend
    on their own rows only, which did not change (``filtered_selects``)."""
    con.execute("DROP TABLE IF EXISTS verdict")
    year = inputs.period.year
    con.register(
        "_previous",
        pd.DataFrame({"sid": [state_id(u, year) for u in carried.units]}, dtype="string"),
    )
    units = sorted({*carried.units, *inputs.daily.units})
    con.register(DAILY_UNITS, pd.DataFrame({"unit": units}, dtype="string"))
    for table in ("excluded", *(f"raw_{t}" for t in (*ORD_TABLES, "idents"))):
        con.execute(f"DELETE FROM {table} WHERE submission_id IN (SELECT sid FROM _previous)")
    for table, rows in add_daily(con, home, inputs).items():
        columns = "* EXCLUDE (fid)" if table == "idents" else "*"
        con.execute(f"INSERT INTO raw_{table} BY NAME SELECT {columns} FROM ({rows})")
    scope = f"unit IN (SELECT unit FROM {DAILY_UNITS})"
    for table, select in filtered_selects(inputs.period, scope).items():
        con.execute(f"DELETE FROM {table} WHERE {scope}")
        con.execute(f"INSERT INTO {table} BY NAME {select}")


def _grade(
    con: duckdb.DuckDBPyConnection, registry: pd.DataFrame, period: Period, carried: bool
) -> None:
    """ISF's stays and contacts with DRG and points (``isf.GRADED``), which the ISF and
    guest-patient steps price: graded whole, or in a carried build for the daily units alone
    (a stay never crosses units; the grouper table is part of ``monthly_key``)."""
    reference_sql.register(con, registry, period.year)
    if not carried:
        isf.grade(con)
        con.execute(f"CREATE OR REPLACE TABLE {isf.GRADED} AS SELECT * FROM isf_detail")
        return
    isf.grade(con, DAILY_UNITS)
    con.execute(f"DELETE FROM {isf.GRADED} WHERE unit IN (SELECT unit FROM {DAILY_UNITS})")
    con.execute(f"INSERT INTO {isf.GRADED} BY NAME SELECT * FROM isf_detail")


def _register_daily(
    con: duckdb.DuckDBPyConnection, home: Home, inputs: PeriodInput, ledger: pd.DataFrame
) -> None:
    """``daily_input`` (the batch the daily units' state was read at, and those units),
    ``daily_sources`` (the daily file and line behind each of their rows), the daily files in
    ``input_submissions`` (lineage), and each unit's state id in ``ref_pair`` and
    ``ref_submission`` (the catalogue's pair and extraction rules over the snapshot)."""
    daily = inputs.daily
    replace_table(
        con,
        "daily_input",
        pd.DataFrame({"batch": [daily.batch] * len(daily.units), "unit": list(daily.units)}),
    )
    if not daily.units:
        con.execute(
            'CREATE OR REPLACE TABLE daily_sources ("table" VARCHAR, unit VARCHAR, '
            "record_id VARCHAR, file VARCHAR, line INTEGER)"
        )
        return
    con.execute("CREATE OR REPLACE TABLE daily_sources AS SELECT * FROM temp.daily_sources")
    con.register("_ledger", ledger[["submission_id", "checksum", "message_type", "file"]])
    con.execute(
        "INSERT INTO input_submissions SELECT s.file, coalesce(l.checksum, ''), s.unit, "
        "coalesce(l.message_type, 'daily'), coalesce(l.file, s.file) FROM "
        "(SELECT DISTINCT unit, file FROM daily_sources) s "
        "LEFT JOIN _ledger l ON l.submission_id = s.file"
    )
    year = inputs.period.year
    ids = [state_id(unit, year) for unit in daily.units]
    con.register("_ids", pd.DataFrame({"sid": ids}))
    # typed again: with no monthly unit the tables were made from empty frames
    con.execute(
        "CREATE OR REPLACE TABLE ref_pair AS SELECT CAST(ord_sid AS VARCHAR) AS ord_sid, "
        "CAST(ide_sid AS VARCHAR) AS ide_sid FROM ref_pair UNION ALL SELECT sid, sid FROM _ids"
    )
    con.execute(
        "CREATE OR REPLACE TABLE ref_submission AS SELECT CAST(submission_id AS VARCHAR) "
        "AS submission_id, CAST(extracted AS DATE) AS extracted, CAST(period_to AS DATE) "
        "AS period_to FROM ref_submission UNION ALL SELECT sid, ?, ? FROM _ids",
        [received_date(home, daily.batch), inputs.period.end],
    )


def _register_gate(con: duckdb.DuckDBPyConnection, verdict: GateVerdict) -> None:
    """``gate`` (a row per step: open or closed, and its record as JSON), ``gate_override``
    (the override, if any) and ``gate_judged`` (every current submission the gate judged)."""
    gates = pd.DataFrame(
        [
            {"step": s.step, "gate": doc["gate"], "record": json.dumps(doc, ensure_ascii=False)}
            for s in verdict.statuses
            for doc in [verdict.step_json(s.step)]
        ]
    )
    replace_table(con, "gate", gates)
    override = verdict.override.as_json() if verdict.override else None
    replace_table(
        con,
        "gate_override",
        pd.DataFrame(
            [{k: json.dumps(v) if isinstance(v, list) else v for k, v in override.items()}]
            if override
            else [],
            columns=["allowed_missing", "reason", "requested_by", "requested_at"],
            dtype="string",
        ),
    )
    judged = verdict.judged[
        ["unit", "message_type", "submission_id", "lopenr", "period_to", "covers", "included"]
    ]
    replace_table(
        con,
        "gate_judged",
        judged.astype({"covers": bool, "included": bool, "lopenr": "Int64"}).astype(
            {c: "string" for c in ("unit", "message_type", "submission_id", "period_to")}
        ),
    )


def record_verdict(
    home: Home,
    period: Period,
    build_id: str,
    run_id: str,
    passed: bool,
    checked: dict[str, object] | None = None,
) -> None:
    """Write the blocking checks' verdict into the snapshot they validated.

    Dagster skips a step when a blocking check fails in the same run; the verdict in the file
    also stops a step started later on its own (say, from the UI) from publishing rows that
    failed their checks. Refused if another run has replaced the file since ``build_id``.
    ``checked``: which rows the checks ran over (``check_scope.CheckScope.as_json``; every row
    unless said), recorded with every delivery version of the build.
    """
    con = duck.connect(snapshot_path(home, period))
    try:
        current = con.execute("SELECT build_id FROM build").fetchall()[0][0]
        if current != build_id:
            raise SnapshotNotReady(
                f"The input snapshot for {period} was replaced by another run while it was "
                "being checked; run again."
            )
        con.execute(
            "CREATE OR REPLACE TABLE verdict AS SELECT ? AS run_id, ? AS passed, now() AS at, "
            "? AS checked",
            [run_id, passed, json.dumps(checked or {"rows": "all"})],
        )
    finally:
        con.close()


def open_snapshot(
    home: Home, period: Period, step: str | None = None
) -> tuple[duckdb.DuckDBPyConnection, pd.DataFrame]:
    """A session reading the period's snapshot (read-only) with the registry's tables.

    Returns the connection and the submissions the snapshot was built from (the lineage every
    delivery records). Temporary tables of the rules live in the session, never in the file.
    Refuses a snapshot whose blocking checks have not passed and, for ``step``, one whose
    completeness gate for that step is closed or was never judged (``GateClosed``).
    """
    path = snapshot_path(home, period)
    if not path.exists():
        raise SnapshotNotReady(
            f"No input snapshot for {period} ({path}): core/production_input builds and "
            "checks it (npr run does this before every step)."
        )
    con = duckdb.connect()
    con.execute(f"ATTACH '{path}' AS snapshot (READ_ONLY)")
    con.execute("USE snapshot")
    if not _passed(con):
        con.close()
        raise SnapshotNotReady(
            f"The input snapshot for {period} has not passed the blocking checks: "
            "rerun core/production_input (npr run) and see its check results."
        )
    if step is not None:
        try:
            _gate_open(con, period, step)
        except GateClosed:
            con.close()
            raise
    reference_sql.register(con, current_registry(home), period.year)
    lineage = con.execute("SELECT * FROM input_submissions ORDER BY submission_id").df()
    return con, lineage


def _passed(con: duckdb.DuckDBPyConnection) -> bool:
    """Whether the snapshot carries a passing verdict (none yet: the checks have not run)."""
    return duck.has_table(con, "verdict", "snapshot") and bool(
        con.execute("SELECT passed FROM verdict").fetchall()[0][0]
    )


def verdict_checks(con: duckdb.DuckDBPyConnection) -> dict[str, object] | None:
    """Which rows the passing checks of the snapshot ``con`` reads ran over (None from a build
    checked before this was recorded)."""
    if "checked" not in con.table("verdict").columns:
        return None
    return json.loads(con.execute("SELECT checked FROM verdict").fetchall()[0][0])


def _gate_open(con: duckdb.DuckDBPyConnection, period: Period, step: str) -> None:
    """Refuse unless the build's gate for ``step`` is open (or every missing unit excused)."""
    record = gate_record(con, step)
    if record is None:
        raise GateClosed(
            f"The input snapshot for {period} carries no completeness gate verdict for {step}: "
            "rebuild it (core/production_input, or npr run)."
        )
    if record["gate"] != "open":
        excused = set(record["excused"])
        names = ", ".join(
            f"{m['reshID']} {m['name']}" for m in record["missing"] if m["reshID"] not in excused
        )
        raise GateClosed(
            f"The completeness gate of {step} for {period} is closed in the input snapshot "
            f"(build {record['build_id']}): missing {names}. Nothing is produced until they "
            "deliver or an audited override (npr run --allow-missing ... --reason ...) names them."
        )


def gate_record(con: duckdb.DuckDBPyConnection, step: str) -> dict[str, object] | None:
    """The gate verdict of ``step`` stored in the snapshot ``con`` reads, with its build id;
    None if the build carries none."""
    if not duck.has_table(con, "gate"):
        return None
    rows = con.execute("SELECT record FROM gate WHERE step = ?", [step]).fetchall()
    if not rows:
        return None
    build_id = con.execute("SELECT build_id FROM build").fetchall()[0][0]
    return {**json.loads(rows[0][0]), "build_id": build_id}


def stored_gates(home: Home, period: Period) -> list[dict[str, object]]:
    """Every step's gate verdict in the period's snapshot (empty without a snapshot)."""
    path = snapshot_path(home, period)
    if not path.exists():
        return []
    con = duck.connect(path, read_only=True)
    try:
        steps = [s for (s,) in con.execute("SELECT step FROM gate").fetchall()]
        return [record for s in steps if (record := gate_record(con, s)) is not None]
    except duckdb.CatalogException:
        return []
    finally:
        con.close()


def register_lineage(con: duckdb.DuckDBPyConnection, inputs: PeriodInput) -> None:
    """``input_submissions`` (lineage), ``ref_pair`` and ``ref_submission`` (pair rules)."""
    pairs = inputs.ords[["unit", "submission_id"]].merge(
        inputs.ides[["unit", "submission_id"]], on="unit", how="left", suffixes=("_ord", "_ide")
    )
    pairs = pairs.rename(columns={"submission_id_ord": "ord_sid", "submission_id_ide": "ide_sid"})
    chosen = inputs.submissions
    submissions = pd.DataFrame(
        {
            "submission_id": chosen["submission_id"],
            "extracted": pd.to_datetime(chosen["extracted"]).dt.date,
            "period_to": pd.to_datetime(chosen["period_to"]).dt.date,
        }
    )
    replace_table(con, "input_submissions", chosen[LINEAGE_COLUMNS].astype(str))
    replace_table(con, "ref_pair", pairs[["ord_sid", "ide_sid"]])
    replace_table(con, "ref_submission", submissions)
