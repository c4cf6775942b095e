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
snapshot date. Small cells: see ``suppress`` (one audited rule, shared with the research
extracts).
"""

from __future__ import annotations

import duckdb
import numpy as np
import pandas as pd

from npr_pipeline import suppression
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
ATOM_COLUMNS = [column for name, column in GROUPS if name != "all"]
# the published hierarchy: each group type's cells make up the cells of its parent type
PARENT = {"rhf": "all", "trust": "rhf", "unit": "trust", "fagomrade": "all", "sector": "all",
          "ownership": "all"}  # fmt: skip


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
    columns = ", ".join(f"CAST({c} AS VARCHAR) AS {c}" for c in ATOM_COLUMNS)
    atoms = con.execute(
        f"SELECT measure, {columns}, count(*) AS n FROM vt_base WHERE measure IS NOT NULL "
        "GROUP BY ALL ORDER BY ALL"
    ).df()
    return {"ventetider": suppress(stats, atoms, threshold)}


def suppress(stats: pd.DataFrame, atoms: pd.DataFrame, threshold: int) -> pd.DataFrame:
    """Counts from 1 to threshold-1 and the statistics computed from them are suppressed, and
    further cells until no hidden count can be recovered from what is published.

    Per measure, every published cell counts a set of atoms (``atoms``: the referral periods
    per combination of all group columns), so every relation between cells is known: a total
    and its parts (unit within trust within RHF within all; fagområde, sector and ownership
    within all), and any other (a sector served by one unit equals that unit). The shared
    audited rule (``npr_pipeline.suppression``) hides cells until none is recoverable: the
    smallest part of a total with one hidden part, else the smallest cell a recovery reads;
    the ``all`` cell last (docs/deliveries/ventetider.md, "Which complementary cells").
    A count protected this way protects its fristbrudd count and sum of days too: they are
    sums over the same atoms.
    """
    stats = stats.copy()
    stats["suppressed"] = False
    for measure, cells in stats.groupby("measure", sort=True):
        labels = _labels(cells, atoms[atoms["measure"] == measure])
        _, hidden = suppression.protect(
            cells["n"].to_numpy(),
            suppression.relations_of_partitions(labels, len(cells)),
            _lines(cells, labels),
            threshold,
            last_resort=(cells["group_type"] == "all").to_numpy(),
        )
        stats.loc[cells.index, "suppressed"] = hidden
    values = ["n", "mean_days", "median_days", "fristbrudd", "fristbrudd_pct"]
    stats[values] = stats[values].astype("float64")
    stats.loc[stats["suppressed"], values] = None
    return stats


def _labels(cells: pd.DataFrame, atoms: pd.DataFrame) -> np.ndarray:
    """atoms x group types: the cell (row position in ``cells``) that counts the atom in each
    group type (a missing value is a value of its own); -1 where none does."""
    types = cells["group_type"].to_numpy()
    labels = np.full((len(atoms), len(GROUPS)), -1, dtype=np.int64)
    for g, (group_type, column) in enumerate(GROUPS):
        own = np.flatnonzero(types == group_type)
        values = _keys(cells["group_value"].iloc[own])
        if group_type == "all":
            found = pd.Index(values).get_indexer(["all"] * len(atoms))
        else:
            found = pd.Index(values).get_indexer(_keys(atoms[column]))
        labels[:, g] = np.where(found >= 0, own[found], -1)
    return labels


_MISSING = object()


def _keys(values: pd.Series) -> pd.Series:
    """Values to look up, every kind of missing value one key."""
    return values.astype(object).where(values.notna(), _MISSING)


def _lines(cells: pd.DataFrame, labels: np.ndarray) -> list[list[int]]:
    """Each published total with the cells of the next level that make it up (total last): the
    parts lying wholly inside it, where together they cover it."""
    column = {name: g for g, (name, _) in enumerate(GROUPS)}
    types = cells["group_type"].to_numpy()
    lines = []
    for child, parent in PARENT.items():
        pairs = suppression.distinct_pairs(labels[:, column[child]], labels[:, column[parent]])
        parts, spans = np.unique(pairs[:, 0], return_counts=True)
        straddling = set(parts[spans > 1].tolist())  # parts in more than one total
        inside: dict[int, list[int]] = {}
        whole: dict[int, bool] = {}
        for part, total in pairs.tolist():
            whole[total] = whole.get(total, True) and part not in straddling
            if part not in straddling:
                inside.setdefault(total, []).append(part)
        for total in np.flatnonzero(types == parent).tolist():
            if inside.get(total) and whole[total]:
                lines.append([*inside[total], total])
    return lines
