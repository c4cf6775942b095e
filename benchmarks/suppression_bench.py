"""Small-cell suppression at national scale: ``ventetider.suppress`` on a synthetic hierarchy.

    python -m benchmarks.suppression_bench [--units 2000 --units 65000] [--seed 1] [--verify]

A synthetic national register per measure (``avviklet``, ``ventende``): 4 RHFs, 5 trusts each
(20), 40 fagområder, 2 sectors, public and private ownership. Up to 1,800 units are public and
belong to a trust; the rest are private, with no trust (the registry's empty parent) and an
RHF by region. A public unit counts referrals in 1-4 fagområder, a private one mostly in one;
counts are heavy-tailed (private units tiny: many below the threshold 5). The table is every
cell of every group type per measure with its total, as ``ventetider.compute`` publishes it.

Times ``ventetider.suppress`` (relations, lines, ``protect`` with its audit) per measure, wall
and CPU seconds (the figure to compare on a shared machine), and reports cells, hidden cells
and the audits ``protect`` ran. ``--verify`` re-checks the result with the dense
reference audit (``relations_of`` + ``recoverable_cells_dense``: cubic, so only up to about
3,000 cells). A measurement, not a gate: the exit code is 0.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Sequence

import numpy as np
import pandas as pd

from npr_pipeline import suppression
from npr_pipeline.production import ventetider

MEASURES = ("avviklet", "ventende")
PUBLIC_UNITS = 1800
THRESHOLD = 5


def national(
    units: int, seed: int, public_mu: float = 3.0, trusts: int = 20
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(stats, atoms) as ``ventetider.compute`` builds them, for a synthetic register."""
    rng = np.random.default_rng(seed)
    public = np.arange(units) < min(PUBLIC_UNITS, units * 9 // 10)
    trust = rng.integers(0, trusts, units)
    region = np.where(public, trust % 4, rng.integers(0, 4, units))
    frame = pd.DataFrame(
        {
            "unit": [f"U{u:05d}" for u in range(units)],
            "rhf": [f"RHF{r}" for r in region],
            "trust": [f"HF{t:02d}" if p else None for t, p in zip(trust, public, strict=True)],
            "sector": np.where(rng.random(units) < 0.7, "somatic", "mental_health"),
            "ownership": np.where(public, "public", "private"),
        }
    )
    fags = np.where(public, rng.integers(1, 5, units), 1 + (rng.random(units) < 0.1))
    rows = np.repeat(np.arange(units), fags)
    atoms = frame.iloc[rows].reset_index(drop=True).assign(public=public[rows])
    atoms["fagomrade"] = [f"{100 + f}" for f in rng.integers(0, 40, len(rows))]
    atoms = atoms.drop_duplicates(["unit", "fagomrade"]).reset_index(drop=True)
    big = atoms.pop("public").to_numpy()
    parts = []
    for measure in MEASURES:
        small = rng.lognormal(0.8, 0.9, len(atoms))
        n = np.where(big, rng.lognormal(public_mu, 1.2, len(atoms)), small)
        part = atoms.assign(measure=measure, n=np.maximum(1, n.round()).astype(np.int64))
        parts.append(part)
    atoms = pd.concat(parts, ignore_index=True)
    stats = pd.concat(
        [
            atoms.groupby("measure", as_index=False)["n"]
            .sum()
            .assign(group_type="all", group_value="all"),
            *[
                atoms.groupby(["measure", column], dropna=False, as_index=False)["n"]
                .sum()
                .rename(columns={column: "group_value"})
                .assign(group_type=name)
                for name, column in ventetider.GROUPS
                if name != "all"
            ],
        ],
        ignore_index=True,
    )
    for column in ("mean_days", "median_days", "fristbrudd", "fristbrudd_pct"):
        stats[column] = 1.0
    return stats.sort_values(["measure", "group_type", "group_value"], ignore_index=True), atoms


class _Counted:
    """Counts the audits ``protect`` runs."""

    def __init__(self) -> None:
        self.calls = 0
        self.inner = suppression.recoverable_cells

    def __call__(self, *args: object) -> list[int]:
        self.calls += 1
        return self.inner(*args)


def run(
    units: int, seed: int, verify: bool, public_mu: float, trusts: int
) -> list[dict[str, object]]:
    stats, atoms = national(units, seed, public_mu, trusts)
    results = []
    for measure in MEASURES:
        cells = stats[stats["measure"] == measure]
        counter = _Counted()
        suppression.recoverable_cells = counter
        try:
            start, cpu = time.perf_counter(), time.process_time()
            out = ventetider.suppress(cells, atoms, THRESHOLD)
            seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
        finally:
            suppression.recoverable_cells = counter.inner
        primary = ((cells["n"] > 0) & (cells["n"] < THRESHOLD)).to_numpy()
        hidden = out["suppressed"].to_numpy()
        result = {
            "units": units,
            "measure": measure,
            "cells": len(cells),
            "atoms": int((atoms["measure"] == measure).sum()),
            "primary": int(primary.sum()),
            "secondary": int((hidden & ~primary).sum()),
            "audits": counter.calls,
            "seconds": round(seconds, 2),
            "cpu_seconds": round(cpu, 2),
        }
        if verify:
            labels = ventetider._labels(cells, atoms[atoms["measure"] == measure])
            members = np.zeros((len(cells), len(labels)), dtype=bool)
            for g in range(labels.shape[1]):
                members[labels[:, g], np.arange(len(labels))] = True
            dense = suppression.relations_of(members)
            result["dense_audit_recoverable"] = len(
                suppression.recoverable_cells_dense(dense, hidden)
            )
        results.append(result)
        print(result, flush=True)
    return results


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.suppression_bench")
    parser.add_argument("--units", type=int, action="append")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--public-mu", type=float, default=3.0, help="log-mean of a public unit's counts (3: ~20)"
    )
    parser.add_argument("--trusts", type=int, default=20)
    parser.add_argument("--verify", action="store_true", help="dense reference audit after")
    args = parser.parse_args(argv)
    for units in args.units or [2000, 65000]:
        run(units, args.seed, args.verify, args.public_mu, args.trusts)


if __name__ == "__main__":
    main()
