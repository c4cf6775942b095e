"""Ventetider: waiting times and fristbrudd for planned care (RULES.md).

Scope: referral periods on a waiting list with a deadline (fristStartHelsehjelp); referrals with
any linked episode that was an emergency admission (innmateHast 1-3) never enter. The wait
starts at the ansiennitetsdato. Completed waits (avviklede) in the window W: care started in W;
days = care start - ansiennitetsdato; a wait the patient chose to extend (a postponement with
code 4, 21 or 22) is counted apart as "completed, not ordinary" and left out of mean and median.
Waits ended for other reasons in W are counted apart. Still waiting (ventende) at the snapshot
date (the last day of W): started by then and not ended by then; days = snapshot -
ansiennitetsdato. Dates after the snapshot are unknown at the snapshot, whatever later files
say. Fristbrudd: care started after the deadline; a ventende whose deadline lies before the
snapshot date.
"""

from __future__ import annotations

import duckdb
import pandas as pd

from npr_pipeline.periods import Period

PATIENT_POSTPONEMENT = "('4', '21', '22')"
GROUPS = (
    ("all", "'all'"),
    ("rhf", "rhf"),
    ("trust", "trust"),
    ("unit", "unit"),
    ("fagomrade", "fagomrade"),
    ("sector", "sector"),
    ("ownership", "ownership"),
)


def _base(start: str, snapshot: str) -> str:
    return f"""
CREATE OR REPLACE TEMP TABLE vt_base AS
WITH scoped AS (
  SELECT r.*, u.rhf, u.parent_trust AS trust, u.sector, u.ownership,
         EXISTS (SELECT 1 FROM postponements p
                 WHERE p.submission_id = r.submission_id
                   AND p."henvisningsperiodeID" = r."henvisningsperiodeID"
                   AND p.utsettelseskode IN {PATIENT_POSTPONEMENT}
                   AND p.utsettelsesdato <= DATE '{snapshot}') AS patient_extended
  FROM referrals r LEFT JOIN ref_units u ON u."reshID" = r.unit
  WHERE r."fristStartHelsehjelp" IS NOT NULL
    AND NOT EXISTS (SELECT 1 FROM raw_episodes e
                    WHERE e.submission_id = r.submission_id
                      AND e."henvisningsperiodeID" = r."henvisningsperiodeID"
                      AND e."innmateHast" IN ('1', '2', '3'))
)
SELECT unit, rhf, trust, fagomrade, sector, ownership,
       CASE WHEN tjenestestart BETWEEN DATE '{start}' AND DATE '{snapshot}'
                 AND NOT patient_extended THEN 'avviklet'
            WHEN tjenestestart BETWEEN DATE '{start}' AND DATE '{snapshot}'
                 THEN 'avviklet_ikke_ordinaer'
            WHEN tjenestestart IS NULL
                 AND avviklingsdato BETWEEN DATE '{start}' AND DATE '{snapshot}'
                 THEN 'avsluttet_annen_grunn'
            WHEN ansiennitetsdato <= DATE '{snapshot}'
                 AND coalesce(least(tjenestestart, avviklingsdato), DATE '9999-12-31')
                     > DATE '{snapshot}'
                 THEN 'ventende'
       END AS measure,
       CASE WHEN tjenestestart BETWEEN DATE '{start}' AND DATE '{snapshot}'
            THEN date_diff('day', ansiennitetsdato, tjenestestart)
            ELSE date_diff('day', ansiennitetsdato, DATE '{snapshot}') END AS days,
       CASE WHEN tjenestestart BETWEEN DATE '{start}' AND DATE '{snapshot}'
            THEN tjenestestart > "fristStartHelsehjelp"
            ELSE "fristStartHelsehjelp" < DATE '{snapshot}' END AS fristbrudd
FROM scoped
"""


def compute(
    con: duckdb.DuckDBPyConnection, period: Period, threshold: int
) -> dict[str, pd.DataFrame]:
    """``ventetider``: statistics per group and measure, small counts suppressed."""
    start, snapshot = (d.isoformat() for d in period.window)
    con.execute(_base(start, snapshot))
    parts = [
        con.execute(
            f"""SELECT '{name}' AS group_type, CAST({column} AS VARCHAR) AS group_value, measure,
                       count(*) AS n, round(avg(days), 1) AS mean_days,
                       median(days) AS median_days,
                       count(*) FILTER (WHERE fristbrudd) AS fristbrudd,
                       round(100.0 * count(*) FILTER (WHERE fristbrudd) / count(*), 1)
                         AS fristbrudd_pct
                FROM vt_base WHERE measure IS NOT NULL
                GROUP BY ALL ORDER BY group_value, measure"""
        ).df()
        for name, column in GROUPS
    ]
    stats = pd.concat(parts, ignore_index=True)
    apart = ~stats["measure"].isin(["avviklet", "ventende"])
    stats[["mean_days", "median_days", "fristbrudd_pct"]] = stats[
        ["mean_days", "median_days", "fristbrudd_pct"]
    ].astype("float64")
    stats["fristbrudd"] = stats["fristbrudd"].astype("float64")
    stats.loc[apart, ["mean_days", "median_days", "fristbrudd", "fristbrudd_pct"]] = None
    stats["status"] = "official" if period.official else "preliminary"
    stats["snapshot_date"] = snapshot
    return {"ventetider": suppress(stats, threshold)}


def suppress(stats: pd.DataFrame, threshold: int) -> pd.DataFrame:
    """Counts from 1 to threshold-1 and the statistics computed from them are suppressed.

    Secondary suppression: where exactly one group of a group type and measure is suppressed,
    the next smallest group is suppressed too, so the hidden count cannot be recovered from the
    'all' row by subtraction.
    """
    stats = stats.copy()
    stats["suppressed"] = (stats["n"] > 0) & (stats["n"] < threshold)
    detail = stats["group_type"] != "all"
    for _, group in stats[detail].groupby(["group_type", "measure"]):
        hidden = group[group["suppressed"]]
        if len(hidden) == 1 and len(group) > 1:
            candidates = group[~group["suppressed"]].sort_values("n")
            stats.loc[candidates.index[0], "suppressed"] = True
    values = ["n", "mean_days", "median_days", "fristbrudd", "fristbrudd_pct"]
    stats[values] = stats[values].astype("float64")
    stats.loc[stats["suppressed"], values] = None
    return stats
