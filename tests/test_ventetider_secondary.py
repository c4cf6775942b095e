"""Secondary suppression hides as little as possible: a demo-sized ventetider table.

The table of ``npr demo`` (one large public unit, ten tiny private ones, a few tiny fagområder)
once lost its grand total and every unit, fagområde and ownership cell to secondary suppression:
each recoverable cell got a neighbour hidden whether or not that broke the recovery, and the
chain ran through the whole table. Now a recoverable cell gets the smallest visible cell of the
combination of published values that gives it away, and the grand total only as a last resort.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from npr_pipeline import suppression
from npr_pipeline.production import ventetider

THRESHOLD = 5
COLUMNS = ["rhf", "trust", "unit", "fagomrade", "sector", "ownership"]
# the demo's completed waits of 2026-T1 (avviklet), one row per atom: rhf, trust, unit,
# fagområde, sector, ownership, n
DEMO = [
    ("HN", "", "9261398", "150", "somatic", "private", 5),
    ("HSO", "", "6601181", "090", "somatic", "private", 5),
    ("HSO", "", "6869564", "320", "mental_health", "private", 4),
    ("HSO", "", "7060691", "300", "somatic", "private", 3),
    ("HSO", "", "7210510", "320", "mental_health", "private", 6),
    ("HSO", "", "8170665", "110", "somatic", "private", 4),
    ("HSO", "", "9577594", "320", "mental_health", "private", 5),
    ("HV", "", "4594525", "320", "mental_health", "private", 2),
    ("HV", "", "8240537", "320", "mental_health", "private", 2),
    ("HV", "", "8385138", "290", "somatic", "private", 2),
    *[
        ("HV", "Helse Bergen HF", "4802960", fag, "somatic", "public", n)
        for fag, n in [
            ("010", 666),
            ("030", 698),
            ("050", 671),
            ("110", 630),
            ("150", 713),
            ("170", 686),
            ("200", 635),
        ]
    ],  # fmt: skip
]


def _table(atoms: pd.DataFrame) -> pd.DataFrame:
    """Every group type's cells with the total, as ``ventetider.compute`` publishes them."""
    parts = [atoms.groupby("measure", as_index=False)["n"].sum().assign(group_value="all")]
    parts[0]["group_type"] = "all"
    for name, column in ventetider.GROUPS[1:]:
        part = atoms.groupby(["measure", column], as_index=False)["n"].sum()
        parts.append(part.rename(columns={column: "group_value"}).assign(group_type=name))
    stats = pd.concat(parts, ignore_index=True)
    for column in ("mean_days", "median_days", "fristbrudd", "fristbrudd_pct"):
        stats[column] = 1.0
    return stats.sort_values(["measure", "group_type", "group_value"], ignore_index=True)


def _synthetic(seed: int) -> pd.DataFrame:
    """Atoms of a demo-like register: 13 units in 3 RHFs (7 public units in 4 trusts, 6 small
    private units without a trust, two in each RHF, one somatic and one mental health), 9 large
    fagområder and 3 small ones, about 5,000 referral periods drawn one by one (the atoms are
    their distinct combinations)."""
    rng = np.random.default_rng(seed)
    public = [
        ("HV", "Helse Bergen HF", "P1", "somatic", 1200),
        ("HV", "Helse Bergen HF", "P2", "mental_health", 300),
        ("HV", "Helse Stavanger HF", "P3", "somatic", 900),
        ("HSO", "Oslo universitetssykehus HF", "P4", "somatic", 1400),
        ("HSO", "Oslo universitetssykehus HF", "P5", "mental_health", 250),
        ("HN", "UNN HF", "P6", "somatic", 700),
        ("HN", "UNN HF", "P7", "mental_health", 150),
    ]
    private = [
        (rhf, "", f"Q{2 * r + s}", sector, int(rng.choice([1, 2, 3, 4, 6, 9])))
        for r, rhf in enumerate(("HV", "HSO", "HN"))
        for s, sector in enumerate(("somatic", "mental_health"))
    ]
    units = pd.DataFrame(
        [(*u, "public") for u in public] + [(*u, "private") for u in private],
        columns=["rhf", "trust", "unit", "sector", "size", "ownership"],
    )
    large = [f"{f:03d}" for f in range(10, 100, 10)]
    records = []
    for row in units.itertuples():
        count = int(row.size) if row.ownership == "private" else rng.poisson(row.size)
        fags = rng.choice(large, size=count)
        if row.ownership == "private":  # a private unit works in one fagområde
            fags[:] = rng.choice(large)
        records += [(row.rhf, row.trust, row.unit, f, row.sector, row.ownership) for f in fags]
    # small fagområder: a handful of referrals at public units
    for fag, count in (("290", 2), ("300", 3), ("320", 6)):
        for unit in rng.choice(units["unit"][:7], size=count):
            u = units.set_index("unit").loc[unit]
            records.append((u.rhf, u.trust, unit, fag, u.sector, u.ownership))
    frame = pd.DataFrame(records, columns=COLUMNS)
    return frame.groupby(COLUMNS, as_index=False).size().rename(columns={"size": "n"})


def _protect(atoms: pd.DataFrame) -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
    """(cells, primary, hidden) of one measure, the hidden cells audited by the dense reference."""
    atoms = atoms.assign(measure="avviklet")
    stats = _table(atoms)
    out = ventetider.suppress(stats, atoms, THRESHOLD)
    labels = ventetider._labels(stats, atoms)
    members = np.zeros((len(stats), len(labels)), dtype=bool)
    for g in range(labels.shape[1]):
        members[labels[:, g], np.arange(len(labels))] = True
    hidden = out["suppressed"].to_numpy()
    assert not suppression.recoverable_cells_dense(suppression.relations_of(members), hidden)
    primary = ((stats["n"] > 0) & (stats["n"] < THRESHOLD)).to_numpy()
    return stats, primary, hidden


def _shown(stats: pd.DataFrame, hidden: np.ndarray) -> set[tuple[str, str]]:
    return set(zip(stats["group_type"][hidden], stats["group_value"][hidden], strict=True))


def test_the_demo_table_keeps_its_total_and_every_large_cell() -> None:
    atoms = pd.DataFrame(DEMO, columns=[*COLUMNS, "n"])
    stats, primary, hidden = _protect(atoms)
    assert not hidden[(stats["n"] >= 50).to_numpy()].any(), stats[hidden]
    assert primary.sum() == 8  # six private units (2, 3 and 4) and fagområder 290 and 300
    # unit 8170665 (4, fagområde 110) is given away by the one large unit's fagområder unless
    # another unit of them is hidden: only 9261398 (5, fagområde 150); it is RHF HN alone, so
    # HN (5) goes, and HN = all - HSO - HV, so HSO (27). Unit 6601181 (5) is fagområde 090
    # alone, and the two protect each other (HSO's three hidden units are then not fixed)
    assert _shown(stats, hidden & ~primary) == {
        ("unit", "9261398"), ("rhf", "HN"), ("rhf", "HSO"),
        ("unit", "6601181"), ("fagomrade", "090"),
    }  # fmt: skip


@pytest.mark.parametrize("seed", range(12))
def test_a_demo_like_register_hides_only_small_cells(seed: int) -> None:
    stats, primary, hidden = _protect(_synthetic(seed))
    assert stats["n"].iloc[0] > 4000 and stats["group_type"].iloc[0] == "all"
    assert not hidden[0]
    assert not hidden[(stats["n"] >= 50).to_numpy()].any(), stats[hidden]
    # the bound: hiding every private unit protects the table (their RHF x sector table then
    # has every cell hidden and two units in each row and column; the tiny fagområder 290 and
    # 300 protect each other), so no more secondary cells are needed than private units not
    # already hidden, and no other cell
    private = (stats["group_type"] == "unit").to_numpy() & stats["group_value"].str.startswith("Q")
    secondary = hidden & ~primary
    assert (secondary <= private).all(), stats[secondary]
    assert secondary.sum() <= (private & ~primary).sum()
