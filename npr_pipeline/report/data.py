"""What the report page shows, read from the warehouse tables of the deliveries it reports.

Every figure on the page comes from here, and every figure here is a row (or the sum of rows)
of a delivery table of one named version, the ledger or the registry: the page never computes
a statistic of its own, so it cannot disagree with what was delivered. The figures are embedded
in the page as JSON (``report-data``), and ``tests/report_checks.py`` compares them with the
tables (in ``make test`` and ``make e2e``). Queries name the columns they read, so columns
added to a delivery later (ownership, financing, a daily route's fields) change nothing here.
"""

from __future__ import annotations

import json
import math
from datetime import date, datetime
from decimal import Decimal

import duckdb
import pandas as pd

from npr_pipeline.duck import has_table
from npr_pipeline.periods import Period
from npr_pipeline.production import STEPS
from npr_pipeline.production.gate import obligations

Row = dict[str, object]
VENTETIDER_MEASURES = ("avviklet", "ventende", "avviklet_ikke_ordinaer", "avsluttet_annen_grunn")
SPLIT_COLUMNS = ("financing", "ownership")
"""The ISF detail columns that tell public from private activity, in order of preference."""
TOP_UNITS = 10


def rows(con: duckdb.DuckDBPyConnection, sql: str, params: list[object] | None = None) -> list[Row]:
    """Query rows as dicts of plain JSON values (DECIMAL money kept exact, as text)."""
    cursor = con.execute(sql, params or [])
    names = [d[0] for d in cursor.description]
    return [dict(zip(names, map(plain, values), strict=True)) for values in cursor.fetchall()]


def plain(value: object) -> object:
    """A JSON-ready value: Decimal as its exact text, dates as ISO text, NaN as None."""
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, float) and math.isnan(value):
        return None
    return value


def current_versions(con: duckdb.DuckDBPyConnection, period: str) -> dict[str, Row]:
    """Per step, its newest version of ``period`` (what the ``*_current`` views show); steps
    this release does not know are left out, not guessed at."""
    if not has_table(con, "delivery_versions"):
        return {}
    found = rows(
        con,
        """SELECT step, period, version, run_id, created, official, gate, submissions
           FROM delivery_versions WHERE period = ?
           QUALIFY version = max(version) OVER (PARTITION BY step)""",
        [period],
    )
    known = [r for r in found if r["step"] in STEPS]
    return {r["step"]: r for r in sorted(known, key=lambda r: STEPS.index(r["step"]))}


def columns(con: duckdb.DuckDBPyConnection, table: str) -> set[str]:
    """The columns a warehouse table has now (empty when it does not exist)."""
    if not has_table(con, table):
        return set()
    return {c for (c,) in con.execute(f'SELECT column_name FROM (DESCRIBE "{table}")').fetchall()}


def collect(con: duckdb.DuckDBPyConnection, period: Period, max_share: float) -> dict[str, object]:
    """Everything the page shows for ``period``, from the current version of each delivery."""
    name = str(period)
    versions = current_versions(con, name)
    return {
        "period": name,
        "versions": {
            step: {k: v[k] for k in ("version", "run_id", "created", "official")}
            for step, v in versions.items()
        },
        "completeness": completeness(con, period, versions),
        "quality": quality(con, versions, max_share),
        "ventetider": ventetider(con, period, versions.get("ventetider")),
        "isf": isf(con, period, versions.get("isf")),
        "gjestepasient": gjestepasient(con, name, versions.get("gjestepasient")),
        "changes": changes(con, name, versions),
    }


def completeness(
    con: duckdb.DuckDBPyConnection, period: Period, versions: dict[str, Row]
) -> list[Row]:
    """Per delivered step: every obligated unit with its region, deadline and status.

    The verdict is the one the version records (``delivery_versions.gate``): missing units and
    the excused among them, with the override's reason; the obligated units are the registry
    (as the run refreshed it into the warehouse) against the reporting calendar, as the gate
    judged them.
    """
    registry = con.execute("SELECT * FROM registry").df() if has_table(con, "registry") else None
    found = []
    for step, version in versions.items():
        gate = json.loads(version["gate"]) if version["gate"] else {}
        override = gate.get("override") or {}
        missing = {m["reshID"] for m in gate.get("missing", [])}
        excused = set(gate.get("excused", []))
        units = _obligated(registry, period, step)
        listed = []
        for unit in units.itertuples(index=False):
            status = "delivered"
            if unit.reshID in excused:
                status = "excused"
            elif unit.reshID in missing:
                status = "missing"
            listed.append(
                {
                    "reshID": unit.reshID,
                    "name": unit.name,
                    "rhf": unit.rhf,
                    "deadline": unit.first_deadline,
                    "status": status,
                    "reason": override.get("reason") if status == "excused" else None,
                }
            )
        found.append(
            {
                "step": step,
                "version": version["version"],
                "gate": gate.get("gate"),
                "expected": gate.get("expected"),
                "delivered": gate.get("delivered"),
                "judged_at": gate.get("judged_at"),
                "units": listed,
            }
        )
    return found


def _obligated(registry: pd.DataFrame | None, period: Period, step: str) -> pd.DataFrame:
    if registry is None or registry.empty:
        return pd.DataFrame(columns=["reshID", "name", "rhf", "first_deadline"])
    registry = registry.astype({c: "string" for c in ("valid_from", "valid_to")})
    units = obligations(registry, period, step)
    return units.sort_values(["rhf", "name"]).reset_index(drop=True)


def quality(
    con: duckdb.DuckDBPyConnection, versions: dict[str, Row], max_share: float
) -> dict[str, object]:
    """Records left out per unit (share of the episodes its ord submission holds) and per rule.

    From the exclusions table of the newest delivered version (every step of one run reads
    the same snapshot, so each step's exclusions are the same); the episodes from the ledger
    rows of the submissions that version was built from.
    """
    if not versions:
        return {"threshold": max_share, "step": None, "units": [], "rules": []}
    step, version = max(versions.items(), key=lambda kv: kv[1]["created"] or "")
    table, (period, number) = f"{step}_exclusions", version_key(version)
    submissions = pd.DataFrame(json.loads(version["submissions"] or "[]"))
    ords = submissions[submissions["message_type"] == "NPR_ORD"] if len(submissions) else None
    con.register("_report_ords", ords if ords is not None else pd.DataFrame({"submission_id": []}))
    try:
        units = rows(
            con,
            f"""WITH received AS (
                  SELECT l.unit, sum(l.episodes) AS episodes FROM ledger l
                  JOIN _report_ords o ON o.submission_id = l.submission_id GROUP BY l.unit),
                excluded AS (
                  SELECT unit, sum(records) FILTER (WHERE "table" = 'episodes') AS episodes,
                         sum(records) AS records
                  FROM "{table}" WHERE period = ? AND version = ? GROUP BY unit)
                SELECT r.unit, g.name, g.rhf, r.episodes,
                       coalesce(x.episodes, 0) AS excluded_episodes,
                       coalesce(x.records, 0) AS excluded_records
                FROM received r LEFT JOIN excluded x USING (unit)
                LEFT JOIN registry g ON g."reshID" = r.unit ORDER BY g.rhf, g.name""",
            [period, number],
        )
    finally:
        con.unregister("_report_ords")
    for unit in units:
        unit["share"] = unit["excluded_episodes"] / unit["episodes"] if unit["episodes"] else 0.0
    rules = rows(
        con,
        f"""SELECT check_id, "table", sum(records) AS records, count(DISTINCT unit) AS units
            FROM "{table}" WHERE period = ? AND version = ?
            GROUP BY ALL ORDER BY records DESC, check_id LIMIT 15""",
        [period, number],
    )
    return {"threshold": max_share, "step": step, "units": units, "rules": rules}


def version_key(version: Row) -> tuple[str, int]:
    """(period, version) of a delivery version row."""
    return version["period"], version["version"]


def ventetider(con: duckdb.DuckDBPyConnection, period: Period, version: Row | None) -> Row:
    """Per region and in all, each measure, from the version; per month of the window, from
    that month's own current delivery where one exists (a tertial's delivery has no months:
    its statistical window is all four)."""
    if version is None:
        return {"version": None, "regions": [], "months": []}
    query = f"""SELECT group_type, group_value, measure, n, mean_days, median_days,
                       fristbrudd_pct, suppressed, version
                FROM ventetider WHERE period = ? AND version = ?
                  AND group_type IN ('all', 'rhf') AND measure IN {VENTETIDER_MEASURES}
                ORDER BY group_type, group_value, measure"""
    latest = "SELECT max(version) FROM delivery_versions WHERE step = 'ventetider' AND period = ?"
    months = []
    for month in period.months:
        (number,) = con.execute(latest, [month]).fetchone()
        found = rows(con, query, [month, number]) if number else []
        months.append({"month": month, "version": number, "rows": found})
    regions = rows(con, query, list(version_key(version)))
    return {"version": version["version"], "regions": regions, "months": months}


def isf(con: duckdb.DuckDBPyConnection, period: Period, version: Row | None) -> Row:
    """Points and refund per region and month of the window (``isf_summary``), public and
    private apart.

    The split reads the detail lines' ``financing`` column, else ``ownership``; with neither,
    only the totals are shown and the page says so. ``assumed_share``: the share of the refund
    computed on rates marked assumed.
    """
    if version is None:
        return {"version": None, "split_by": None, "months": [], "split": [], "assumed": {}}
    key = list(version_key(version))
    months = rows(
        con,
        """SELECT key AS rhf, month, stays, contacts, points, refund, rate_assumed,
                  left_out_paid_privately
           FROM isf_summary WHERE period = ? AND version = ? AND level = 'rhf'
             AND list_contains(?, month) ORDER BY month, rhf""",
        [*key, period.months],
    )
    detail = columns(con, "isf_detail")
    split_by = next((c for c in SPLIT_COLUMNS if c in detail), None)
    split = []
    if split_by:
        split = rows(
            con,
            f"""SELECT rhf, month, CAST("{split_by}" AS VARCHAR) AS part, sum(points) AS points,
                       sum(refund) AS refund
                FROM isf_detail WHERE period = ? AND version = ? GROUP BY ALL ORDER BY ALL""",
            key,
        )
    (assumed, total) = con.execute(
        """SELECT sum(refund) FILTER (WHERE rate_assumed), sum(refund)
           FROM isf_detail WHERE period = ? AND version = ?""",
        key,
    ).fetchone()
    return {
        "version": version["version"],
        "split_by": split_by,
        "months": months,
        "split": split,
        "assumed": {
            "refund": plain(assumed or Decimal(0)),
            "total": plain(total or Decimal(0)),
            "share": float(assumed / total) if assumed and total else 0.0,
        },
    }


def gjestepasient(con: duckdb.DuckDBPyConnection, period: str, version: Row | None) -> Row:
    """The settlement matrix (home region pays treating region) and the cases listed apart."""
    if version is None:
        return {"version": None, "matrix": [], "apart": []}
    key = list(version_key(version))
    matrix = rows(
        con,
        """SELECT month, home_rhf, treating_rhf, cases, points, amount, rate_assumed
           FROM gjestepasient_matrix WHERE period = ? AND version = ? ORDER BY ALL""",
        key,
    )
    apart = rows(
        con,
        """SELECT month, treating_rhf, category, cases
           FROM gjestepasient_apart WHERE period = ? AND version = ? ORDER BY ALL""",
        key,
    )
    return {"version": version["version"], "matrix": matrix, "apart": apart}


HEADLINES = {
    "ventetider": """
        SELECT measure || ': ' || m AS measure, value FROM (
          SELECT measure, n, mean_days, median_days, fristbrudd_pct FROM ventetider
          WHERE period = ? AND version = ? AND group_type = 'all'
            AND measure IN ('avviklet', 'ventende'))
        UNPIVOT (value FOR m IN (n, mean_days, median_days, fristbrudd_pct))""",
    "isf": """
        SELECT m AS measure, value FROM (
          SELECT CAST(stays AS DOUBLE) AS stays, CAST(contacts AS DOUBLE) AS contacts,
                 points, CAST(refund AS DOUBLE) AS refund
          FROM isf_summary WHERE period = ? AND version = ? AND level = 'all'
            AND month = 'period')
        UNPIVOT (value FOR m IN (stays, contacts, points, refund))""",
    "gjestepasient": """
        SELECT m AS measure, value FROM (
          SELECT CAST(sum(cases) AS DOUBLE) AS cases, CAST(sum(amount) AS DOUBLE) AS amount
          FROM gjestepasient_matrix WHERE period = ? AND version = ?)
        UNPIVOT (value FOR m IN (cases, amount))""",
    "kjernejournal": """
        SELECT m AS measure, value FROM (
          SELECT CAST("rows" AS DOUBLE) AS "rows", CAST(persons AS DOUBLE) AS persons
          FROM kjernejournal_counts WHERE period = ? AND version = ?)
        UNPIVOT (value FOR m IN ("rows", persons))""",
}
"""Per step, its headline numbers of one version as (measure, value) rows."""
UNIT_CHANGES = {
    "ventetider": """SELECT group_value AS unit, 'avviklet n' AS measure, n AS value
                     FROM ventetider WHERE period = ? AND version = ?
                       AND group_type = 'unit' AND measure = 'avviklet'""",
    "isf": """SELECT key AS unit, 'refund' AS measure, CAST(refund AS DOUBLE) AS value
              FROM isf_summary WHERE period = ? AND version = ? AND level = 'unit'
                AND month = 'period'""",
    "gjestepasient": """SELECT unit, 'amount' AS measure, CAST(sum(amount) AS DOUBLE) AS value
                        FROM gjestepasient_detail WHERE period = ? AND version = ?
                        GROUP BY unit""",
}
"""Per step, one number per unit of one version, to find the largest changes."""


def changes(con: duckdb.DuckDBPyConnection, period: str, versions: dict[str, Row]) -> list[Row]:
    """Per step, the current version against the one before: headline numbers, the units that
    moved most, and the submissions that are new in it."""
    found = []
    names = dict(con.execute('SELECT "reshID", name FROM registry').fetchall()) if versions else {}
    for step, version in versions.items():
        new = version["version"]
        entry: Row = {"step": step, "from": None, "to": new, "headlines": [], "units": []}
        entry["new_submissions"] = []
        if new > 1:
            old = new - 1
            entry["from"] = old
            entry["headlines"] = _paired(con, HEADLINES[step], period, old, new)
            if step in UNIT_CHANGES:
                moved = _paired(con, UNIT_CHANGES[step], period, old, new, key="unit")
                moved = [m for m in moved if m["old"] != m["new"]]
                moved.sort(key=lambda m: -abs((m["new"] or 0) - (m["old"] or 0)))
                entry["units"] = [{**m, "name": names.get(m["unit"])} for m in moved[:TOP_UNITS]]
            entry["new_submissions"] = _new_submissions(con, step, period, old, version)
        found.append(entry)
    return found


def _paired(
    con: duckdb.DuckDBPyConnection, sql: str, period: str, old: int, new: int, key: str = "measure"
) -> list[Row]:
    """The rows of ``sql`` in two versions side by side, matched on ``key``."""
    before = {r[key]: r for r in rows(con, sql, [period, old])}
    after = {r[key]: r for r in rows(con, sql, [period, new])}
    paired = []
    for name in list(after) + [k for k in before if k not in after]:
        row = after.get(name) or before[name]
        paired.append(
            {
                **{k: v for k, v in row.items() if k != "value"},
                "old": before.get(name, {}).get("value"),
                "new": after.get(name, {}).get("value"),
            }
        )
    return paired


def _new_submissions(
    con: duckdb.DuckDBPyConnection, step: str, period: str, old: int, version: Row
) -> list[Row]:
    (before,) = con.execute(
        "SELECT submissions FROM delivery_versions WHERE step = ? AND period = ? AND version = ?",
        [step, period, old],
    ).fetchone()
    known = {s["submission_id"] for s in json.loads(before or "[]")}
    return [
        {k: s.get(k) for k in ("unit", "message_type", "file", "submission_id")}
        for s in json.loads(version["submissions"] or "[]")
        if s["submission_id"] not in known
    ]
