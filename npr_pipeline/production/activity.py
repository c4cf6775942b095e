"""Activity by ownership and financing: the one table where public and private meet.

DOMAIN.md: every delivery must separate private from public activity and keep them comparable,
and RULES.md ("Who pays") keeps privately funded activity in the activity figures, split by
financing, while ISF and the settlement leave it out. ISF's own tables therefore cannot show
private activity in public units (a self-paying patient at a hospital) next to public activity
in private units (a contract clinic, or Helfo paying after a fristbrudd): this table does.

Two axes, never mixed up: ownership is the treating unit's, from the registry; financing is
the payer's (debitor) on the record, a stay taking its first episode's, exactly as ISF decides
what it leaves out (``isf.PRIVATE_PAYERS``). Stays and contacts are ISF's (``isf_priced``, so
the counts match ISF's and the settlement's to the record) in the period's window, counted by
the month they ended, with their DRG points as the common measure of size.

Published (steering figures), so small counts are suppressed by the shared audited rule
(``suppression.suppress``): each kind is an ownership x financing table with its totals, and
a hidden count hides its points, which are summed over the same stays or contacts. Stays and
contacts are protected as two tables; their sum is not published, so neither gives the other
away.
"""

from __future__ import annotations

import duckdb
import numpy as np
import pandas as pd

from npr_pipeline import suppression
from npr_pipeline.periods import Period

KINDS = ("stay", "contact")
SIDES = ("public", "private")
ALL = "all"


def compute(con: duckdb.DuckDBPyConnection, period: Period, threshold: int) -> pd.DataFrame:
    """``isf_activity``: per kind, ownership x financing with totals, small counts suppressed.

    Needs ``isf_priced`` (``isf.compute`` first).
    """
    start, end = (d.isoformat() for d in period.window)
    found = con.execute(
        f"""SELECT kind, ownership,
                   CASE WHEN paid_privately THEN 'private' ELSE 'public' END AS financing,
                   count(*) AS activities, CAST(coalesce(sum(points), 0) AS DOUBLE) AS points
            FROM isf_priced
            WHERE CAST(end_time AS DATE) BETWEEN DATE '{start}' AND DATE '{end}'
            GROUP BY ALL"""
    ).df()
    found["ownership"] = found["ownership"].fillna("unknown")  # a unit the registry lacks
    owners = [*SIDES, *sorted(set(found["ownership"]) - set(SIDES))]
    frames = [_protected(found[found["kind"] == kind], kind, owners, threshold) for kind in KINDS]
    table = pd.concat(frames, ignore_index=True)
    table["status"] = "official" if period.official else "preliminary"
    return table


def _protected(rows: pd.DataFrame, kind: str, owners: list[str], threshold: int) -> pd.DataFrame:
    """One kind's table (owners x financing, totals last) in long form, suppression applied."""
    counts = _grid(rows, owners, "activities")
    points = _grid(rows, owners, "points")
    result = suppression.suppress(counts.to_numpy(), threshold)
    labels_rows, labels_cols = [*owners, ALL], [*SIDES, ALL]
    with_totals = np.zeros((len(labels_rows), len(labels_cols)))
    with_totals[:-1, :-1] = points.to_numpy()
    with_totals[-1, :] = with_totals[:-1, :].sum(axis=0)
    with_totals[:, -1] = with_totals[:, :-1].sum(axis=1)
    out = []
    for r, owner in enumerate(labels_rows):
        for c, financing in enumerate(labels_cols):
            hidden = bool(result.hidden[r, c])
            out.append(
                {
                    "kind": kind,
                    "ownership": owner,
                    "financing": financing,
                    "activities": None if hidden else int(result.values[r, c]),
                    "points": None if hidden else round(float(with_totals[r, c]), 4),
                    "suppressed": hidden,
                }
            )
    return pd.DataFrame(out).astype({"activities": "Int64", "points": "float64"})


def _grid(rows: pd.DataFrame, owners: list[str], column: str) -> pd.DataFrame:
    """owners x financing of ``column``, every combination present (zero where none)."""
    grid = rows.pivot_table(index="ownership", columns="financing", values=column, aggfunc="sum")
    return grid.reindex(index=owners, columns=list(SIDES)).fillna(0)
