"""``npr diff``: what changed between two versions of a delivery (a late correction's effect).

Rows are matched on each table's key; a row is added, removed, or changed (same key, other
values). Kjernejournal rows carry fødselsnummer, so only their counts are compared, never shown.
Beside the rows, the two versions' provenance (``provenance.Provenance``: code, catalogue,
registry, reference data, locked dependencies) is compared field by field, so a changed number
can be told apart from a changed input file, a changed rule or a changed dependency.
"""

from __future__ import annotations

import pandas as pd

from npr_pipeline.duck import has_table
from npr_pipeline.home import Home
from npr_pipeline.production.deliveries import versions
from npr_pipeline.provenance import PROVENANCE_COLUMNS
from npr_pipeline.warehouse import reader

KEYS: dict[str, dict[str, list[str]]] = {
    "ventetider": {"ventetider": ["group_type", "group_value", "measure"]},
    "isf": {
        "isf_detail": ["unit", "activity_id"],
        "isf_summary": ["level", "key", "month"],
    },
    "gjestepasient": {
        "gjestepasient_matrix": ["month", "treating_rhf", "home_rhf"],
        "gjestepasient_detail": ["unit", "activity_id"],
    },
    "kjernejournal": {"kjernejournal_counts": ["period"]},
}
EXAMPLES = 20


class DiffError(ValueError):
    """There is nothing to compare (fewer than two versions, or an unknown version)."""


def diff_versions(
    home: Home, step: str, period: str, old: int | None = None, new: int | None = None
) -> dict[str, object]:
    """Added, removed and changed rows per table between versions ``old`` and ``new``."""
    with reader(home) as con:
        if not has_table(con, "delivery_versions"):
            raise DiffError(f"no deliveries yet in {home.warehouse}: npr run writes them")
        rows = versions(con, step, period)
        known = rows["version"].tolist()
        if len(known) < 2 and (old is None or new is None):
            raise DiffError(f"{step} {period} has {len(known)} version(s); nothing to compare")
        new = new if new is not None else known[-1]
        old = old if old is not None else known[known.index(new) - 1]
        missing = [v for v in (old, new) if v not in known]
        if missing:
            listed = ", ".join(str(v) for v in known) or "none"
            raise DiffError(f"{step} {period} has no version {missing[0]}; versions: {listed}")
        tables = {
            name: _compare(con, name, period, old, new, keys) for name, keys in KEYS[step].items()
        }
    return {
        "step": step,
        "period": period,
        "from": old,
        "to": new,
        "tables": tables,
        "provenance": compare_provenance(rows.set_index("version"), old, new),
    }


def compare_provenance(rows: pd.DataFrame, old: int, new: int) -> dict[str, dict[str, object]]:
    """Per provenance field: its value in ``old`` and ``new`` and whether it changed.

    Versions written before a field was recorded have no value for it (None)."""
    found = {}
    for column in PROVENANCE_COLUMNS:
        before, after = (
            _plain(rows.at[v, column]) if column in rows.columns else None for v in (old, new)
        )
        found[column] = {"from": before, "to": after, "changed": before != after}
    return found


def _plain(value: object) -> object:
    """A JSON-ready value (numpy scalars as Python ones, missing as None)."""
    if value is None or (not isinstance(value, str) and pd.isna(value)):
        return None
    return value.item() if hasattr(value, "item") else value


def _key(names: list[str], key: object) -> str:
    """A row key as ``name=value, ...`` (not a Python tuple)."""
    values = key if isinstance(key, tuple) else (key,)
    return ", ".join(f"{n}={v}" for n, v in zip(names, values, strict=True))


def _compare(con, table: str, period: str, old: int, new: int, keys: list[str]) -> dict:
    query = f'SELECT * EXCLUDE (version) FROM "{table}" WHERE period = ? AND version = ?'
    before = con.execute(query, [period, old]).df().set_index(keys)
    after = con.execute(query, [period, new]).df().set_index(keys)
    added = after.index.difference(before.index)
    removed = before.index.difference(after.index)
    common = after.index.intersection(before.index)
    left = before.loc[common].sort_index()
    right = after.loc[common, left.columns].sort_index()
    changed_mask = ~((left == right) | (left.isna() & right.isna())).all(axis=1)
    changed = left.index[changed_mask.to_numpy()]
    examples = [f"added {_key(keys, k)}" for k in list(added)[:EXAMPLES]]
    examples += [f"removed {_key(keys, k)}" for k in list(removed)[:EXAMPLES]]
    for key in list(changed)[:EXAMPLES]:
        fields = [
            f"{c}: {left.at[key, c]} -> {right.at[key, c]}"
            for c in left.columns
            if not (pd.isna(left.at[key, c]) and pd.isna(right.at[key, c]))
            and left.at[key, c] != right.at[key, c]
        ]
        examples.append(f"changed {_key(keys, key)}: " + "; ".join(fields))
    return {
        "added": len(added),
        "removed": len(removed),
        "changed": len(changed),
        "examples": examples,
    }
