"""The per-period quality results page: what the GX suites found, readable without internet.

GX 1.24's own Data Docs load Bootstrap, jQuery and bootstrap-table from public CDNs; on the
register's network (no internet) they render unstyled and their index tables stay empty, and
anywhere else every opening tells those CDNs that a register page was opened. So the page
coordinators and data engineers open is this one: ``HOME/data_docs/<period>/index.html``, a
single file with inline CSS, no scripts and no URLs, that prints on paper as it shows on screen.
GX's raw Data Docs are kept beside it in ``gx/`` as the auditable record and linked from it
(docs/quality-engine.md says why both).

The page lists every catalogue check, also those GX does not run, so that a check missing from
the run is visible rather than silently absent. It shows counts and shares, never values: the
results of a period are aggregates, so the page holds no personal data and can be printed and
passed on. It is rendered from ``gx_suite.run_suites``'s results and the catalogue; this module
imports neither GX nor Dagster.
"""

from __future__ import annotations

import functools
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from importlib.metadata import version
from pathlib import Path
from typing import TYPE_CHECKING

import jinja2
from markupsafe import Markup, escape

from npr_pipeline.atomic import write_text
from npr_pipeline.quality.catalogue import Check
from npr_pipeline.templating import html_environment

if TYPE_CHECKING:  # importing gx_suite imports GX (seconds); rendering needs only the type
    from npr_pipeline.quality.gx_suite import CheckResult

PAGE = "index.html"
GX_DOCS = "gx"
"""The folder, beside the page, that receives GX's own (CDN-dependent) Data Docs site."""

SEVERITIES = ("error", "warning")
NBSP = "\u00a0"


@dataclass(frozen=True)
class Row:
    """One catalogue check on the page; ``result`` is None for a check GX did not run."""

    check: Check
    result: CheckResult | None

    @property
    def status(self) -> str:
        """``passed``, ``failed``, ``gx_error`` (GX could not evaluate it) or ``not_run``."""
        if self.result is None:
            return "not_run"
        if self.result.error is not None:
            return "gx_error"
        return "passed" if self.result.success else "failed"


def write_results_page(
    folder: Path,
    period: str,
    checks: Sequence[Check],
    results: Sequence[CheckResult],
    run_at: datetime,
    scope: str | None = None,
) -> Path:
    """Write ``folder/index.html`` for one period's run; return its path.

    ``checks`` is the catalogue the run was given (every check gets a row, in its order);
    ``results`` what ``run_suites`` returned; ``scope`` a line saying which rows they cover
    when not every row (``production.check_scope``). The page links GX's own Data Docs only when
    ``folder/gx/index.html`` exists, so it never carries a broken link.
    """
    by_id = {r.check_id: r for r in results}
    rows = [Row(check, by_id.get(check.id)) for check in checks]
    statuses = Counter((row.status, row.check.severity) for row in rows)
    summary = {
        "catalogue": len(rows),
        "run": sum(1 for row in rows if row.result is not None),
        "passed": sum(n for (status, _), n in statuses.items() if status == "passed"),
        "failed": {s: statuses["failed", s] + statuses["gx_error", s] for s in SEVERITIES},
        "gx_errors": sum(n for (status, _), n in statuses.items() if status == "gx_error"),
        "not_run": sum(n for (status, _), n in statuses.items() if status == "not_run"),
    }
    gx_index = folder / GX_DOCS / "index.html"
    page = folder / PAGE
    text = (
        _environment()
        .get_template("quality_results.html.j2")
        .render(
            period=period,
            scope=scope,
            run_at=run_at.isoformat(sep=" ", timespec="seconds"),
            gx_version=version("great_expectations"),
            summary=summary,
            rows=rows,
            failures=[row for row in rows if row.status in ("failed", "gx_error")],
            gx_docs=f"{GX_DOCS}/index.html" if gx_index.is_file() else None,
        )
    )
    write_text(page, text, durable=False)  # rebuilt by the next run of the period
    return page


@functools.cache
def _environment() -> jinja2.Environment:
    """Autoescape on: catalogue texts and GX's exception messages are not HTML."""
    env = html_environment()
    env.filters["breakable"] = _breakable
    env.filters["count"] = _count
    env.filters["share"] = _share
    return env


def _breakable(name: str) -> Markup:
    """An identifier that may wrap after its underscores, so ten columns fit a page's width."""
    return escape(name).replace("_", Markup("_<wbr>"))


def _count(n: int) -> str:
    """Thousands grouped with no-break spaces (Norwegian style) so a count never wraps."""
    return f"{n:,}".replace(",", NBSP)


def _share(percent: float) -> str:
    """A percentage that never shows a non-zero share as 0."""
    if percent == 0:
        return f"0{NBSP}%"
    if percent < 0.01:
        return f"<{NBSP}0.01{NBSP}%"
    return f"{percent:.2f}{NBSP}%"
