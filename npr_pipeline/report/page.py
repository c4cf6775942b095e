"""The deadline-day report page of a period: ``HOME/reports/<period>/index.html``.

Every production run writes it anew from the current delivery versions (``data.collect``):
first as the next numbered file ``v0001.html``, ``v0002.html``, ... (the earlier ones are kept
as they were, for "what did the page say on Tuesday"), then as ``index.html``, each write atomic
so a reader never sees half a page. One self-contained file: inline CSS and SVG, no scripts to
run, no URL that leaves the machine, and the figures it shows embedded as JSON
(``<script type="application/json" id="report-data">``) so a test, or an analyst, can check
them against the delivery tables. Aggregates only: no fødselsnummer, no pasientNr.
"""

from __future__ import annotations

import functools
import json
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import jinja2
from markupsafe import Markup

from npr_pipeline.atomic import write_text
from npr_pipeline.home import Home
from npr_pipeline.periods import Period
from npr_pipeline.report import charts, data
from npr_pipeline.settings import load_settings
from npr_pipeline.templating import html_environment
from npr_pipeline.warehouse import reader

PAGE = "index.html"
NBSP = "\u00a0"
STEP_TITLES = {
    "ventetider": "Ventetider (waiting times)",
    "isf": "ISF (activity-based financing)",
    "gjestepasient": "Gjestepasient (guest patients)",
    "kjernejournal": "Kjernejournal (summary care record)",
}
APART = {
    "abroad": "bosatt i utlandet (living abroad)",
    "invalid_municipality": "ugyldig kommunenr (invalid municipality)",
    "no_treating_region": "uten behandlende region (no treating region)",
    "paid_privately": "betalt av pasient/forsikring (paid privately)",
}


@dataclass(frozen=True)
class Written:
    """Where a run's report went: the page people open and this run's numbered copy."""

    index: Path
    version_file: Path
    seconds: float


def report_folder(home: Home, period: str) -> Path:
    """``HOME/reports/<period>``: the page and its earlier versions."""
    return home.reports / period


def write_report(home: Home, period: Period, run_id: str) -> Written:
    """Collect, draw and write the period's page; the run's copy first, then ``index.html``."""
    started = datetime.now(UTC)
    with reader(home) as con:
        document = data.collect(con, period, load_settings(home).max_excluded_share)
    document["run_id"] = run_id
    document["generated_at"] = started.isoformat(timespec="seconds")
    folder = report_folder(home, str(period))
    number = 1 + max((int(p.stem[1:]) for p in folder.glob("v[0-9]*.html")), default=0)
    version_file = folder / f"v{number:04d}.html"
    earlier = sorted(p.name for p in folder.glob("v[0-9]*.html"))
    text = render(document, earlier, version_file.name)
    write_text(version_file, text, durable=False)  # rebuilt from the warehouse if lost
    write_text(folder / PAGE, text, durable=False)
    seconds = (datetime.now(UTC) - started).total_seconds()
    return Written(folder / PAGE, version_file, seconds)


def render(document: dict, earlier: list[str], this_version: str) -> str:
    """The page's HTML for a ``data.collect`` document; ``earlier`` and ``this_version`` are
    the file names of the kept versions, linked from the page."""
    pictures = {
        "completeness": charts.completeness(document["completeness"]),
        "quality": charts.quality(document["quality"]),
        "ventetider_regions": charts.ventetider_regions(document["ventetider"]["regions"]),
        "ventetider_months": charts.ventetider_months(document["ventetider"]["months"]),
        "isf": charts.isf(document["isf"]),
        "gjestepasient": charts.gjestepasient(document["gjestepasient"]["matrix"]),
    }
    embedded = json.dumps(document, ensure_ascii=False, sort_keys=True).replace("</", "<\\/")
    return (
        _environment()
        .get_template("report.html.j2")
        .render(
            d=document,
            charts={k: Markup(v) if v else None for k, v in pictures.items()},  # noqa: S704 - our own SVG
            embedded=Markup(embedded),  # noqa: S704 - JSON with "</" escaped
            earlier=earlier,
            this_version=this_version,
            steps=STEP_TITLES,
            grid=unit_grid(document["completeness"]),
            apart=apart_totals(document["gjestepasient"]["apart"]),
            isf_parts=isf_parts(document["isf"]["split"]),
            apart_labels=APART,
            regions=charts.REGION_COLOURS,
        )
    )


def unit_grid(steps: list[dict]) -> list[dict]:
    """One row per obligated unit: region, id, name, deadline and its status in each step."""
    units: dict[str, dict] = {}
    for step in steps:
        for unit in step["units"]:
            row = units.setdefault(unit["reshID"], {**unit, "steps": {}})
            row["steps"][step["step"]] = unit
    return sorted(units.values(), key=lambda u: (str(u["rhf"]), str(u["name"])))


def isf_parts(split: list[dict]) -> dict[str, dict[str, Decimal]]:
    """Refund per ``region|month``, public and private apart (exact: the detail lines' sums
    as the warehouse gave them); what is not ``private`` is public."""
    parts: dict[str, dict[str, Decimal]] = defaultdict(
        lambda: {"public": Decimal(0), "private": Decimal(0)}
    )
    for row in split:
        side = "private" if row["part"] == "private" else "public"
        parts[f"{row['rhf']}|{row['month']}"][side] += Decimal(row["refund"] or 0)
    return dict(parts)


def apart_totals(apart: list[dict]) -> list[dict]:
    """Cases listed apart from the settlement, per category and treating region (the months
    of the period summed)."""
    totals: dict[tuple[str, str], int] = defaultdict(int)
    for row in apart:
        totals[row["category"], row["treating_rhf"] or "–"] += int(row["cases"])
    return [{"category": c, "treating_rhf": t, "cases": n} for (c, t), n in sorted(totals.items())]


@functools.cache
def _environment() -> jinja2.Environment:
    """The shared strict, autoescaping set-up with the page's number formats."""
    env = html_environment()
    env.filters.update(count=count, money=money, number=number, percent=percent)
    return env


def count(n: object) -> str:
    """A count with thousands grouped by no-break spaces; ``–`` for none."""
    if n is None:
        return "–"
    return f"{int(n):,}".replace(",", NBSP)  # type: ignore[call-overload]


def money(value: object) -> str:
    """Kroner and øre, exact (from the DECIMAL text), Norwegian style: 1 234 567,89."""
    if value is None:
        return "–"
    text = f"{Decimal(str(value)):,.2f}"
    return text.replace(",", NBSP).replace(".", ",")


def number(value: object, digits: int = 1) -> str:
    """A measured value (days, points) with ``digits`` decimals, a whole count without; ``–``
    for none."""
    if value is None:
        return "–"
    value = float(value)  # type: ignore[arg-type]
    places = 0 if value.is_integer() else digits
    return f"{value:,.{places}f}".replace(",", NBSP).replace(".", ",")


def percent(share: object) -> str:
    """A share (0..1) as a percentage with one decimal."""
    if share is None:
        return "–"
    return f"{100 * float(share):.1f}".replace(".", ",") + f"{NBSP}%"  # type: ignore[arg-type]
