"""``docs/quality.md`` generated from the catalogue, so the list of checks cannot drift.

``python -m npr_pipeline.quality.docs`` rewrites it; a test compares it with the catalogue.
"""

from __future__ import annotations

import sys
from pathlib import Path

from npr_pipeline.quality.catalogue import Check, load_catalogue
from npr_pipeline.quality.sql_engine import ROW_QUERIES

DOC = Path(__file__).resolve().parents[2] / "docs" / "quality.md"
HEAD = """# Quality checks

Generated from `expectations/*.yaml` by `python -m npr_pipeline.quality.docs`: do not edit by
hand. The catalogue format is described in `expectations/README.md`; the engines that run it in
`docs/quality-engine.md`.

Severity `error`: the record is excluded from production and reported to the unit in XPR_ERR.
Severity `warning`: reported only. A check fails for a submission when more than `threshold` of
its rows violate it (0: any violation).
"""


def _kwargs(check: Check) -> str:
    if check.expectation in ROW_QUERIES:
        return "SQL: `" + " ".join(str(check.kwargs["sql"]).split()) + "`"
    return ", ".join(f"{k}={v}" for k, v in check.kwargs.items())


def render(checks: tuple[Check, ...]) -> str:
    """The page: a summary table, then one section per table."""
    lines = [
        HEAD,
        "| check | table | category | severity | threshold |",
        "| --- | --- | --- | --- | --- |",
    ]
    lines += [
        f"| `{c.id}` | {c.table} | {c.category} | {c.severity} | {c.threshold:g} |" for c in checks
    ]
    for table in dict.fromkeys(c.table for c in checks):
        lines += ["", f"## {table}", ""]
        for c in (c for c in checks if c.table == table):
            lines += [
                f"### `{c.id}`",
                "",
                f"- {c.category}, {c.severity}; `{c.expectation}`: {_kwargs(c)}",
                f"- What the unit reads: {c.message}",
                f"- What to do: {c.fix}",
                "",
            ]
    return "\n".join(lines).rstrip() + "\n"


if __name__ == "__main__":
    target = Path(sys.argv[1]) if len(sys.argv) > 1 else DOC
    target.write_text(render(load_catalogue()), encoding="utf-8")
