"""The report page's pictures: static SVG drawn by matplotlib from the page's own data.

Why matplotlib and static SVG: docs/decisions/report-charts.md. Each function takes a section
of ``data.collect``'s document and returns an ``<svg>`` element to inline in the page (text kept
as text, so it prints sharp, can be searched and needs no font file), or None when there is
nothing to draw: a chart of an empty or wholly suppressed series is never drawn. Regions keep
one colour on every chart (``REGION_COLOURS``); a suppressed cell is marked where its bar would
be, never drawn.
"""

from __future__ import annotations

import io
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from decimal import Decimal

import matplotlib
from matplotlib.axes import Axes
from matplotlib.backends.backend_svg import FigureCanvasSVG
from matplotlib.figure import Figure

REGION_COLOURS = {
    "HSO": "#0072B2",  # Okabe-Ito: distinguishable with the common colour-vision deficiencies
    "HV": "#E69F00",
    "HMN": "#009E73",
    "HN": "#CC79A7",
}
OTHER_COLOUR = "#777777"
REGIONS = tuple(REGION_COLOURS)
STATUS_COLOURS = {"delivered": "#2E7D32", "excused": "#E0A800", "missing": "#C62828"}
STATUS_LABELS = {
    "delivered": "levert (delivered)",
    "excused": "unntatt (excused)",
    "missing": "mangler (missing)",
}
SUPPRESSED = "prikket"
"""Where a suppressed cell's bar would be (the captions say: prikket = suppressed)."""
WIDTH = 9.0  # inches at 100 dpi: fits a laptop screen and an A4 landscape page
STYLE = {
    "svg.fonttype": "none",  # text as <text>: sharp in print, searchable, no embedded glyphs
    "font.family": "sans-serif",
    "font.size": 9,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": True,
    "grid.color": "#DDDDDD",
    "axes.axisbelow": True,
}


def region_colour(region: object) -> str:
    """The one colour a region has on every chart."""
    return REGION_COLOURS.get(str(region), OTHER_COLOUR)


def ordered_regions(found: object) -> list[str]:
    """The regions in ``found`` in the fixed order (north to south is not ours to choose: the
    order of REGION_COLOURS), any unknown region last."""
    names = {str(r) for r in found if r is not None}  # type: ignore[attr-defined]
    return [r for r in REGIONS if r in names] + sorted(names - set(REGIONS))


@dataclass(frozen=True)
class Margins:
    """Space around the axes, in inches (fixed: matplotlib's constrained layout measures every
    text again and took more than half of the page's time)."""

    left: float = 0.75
    right: float = 0.15
    bottom: float = 0.55
    top: float = 0.5
    between: float = 0.8  # between panels side by side


def label_inches(labels: object) -> float:
    """The left margin that fits the longest tick label (about 0.065 in a character at 9 pt)."""
    return 0.25 + 0.065 * max((len(str(label)) for label in labels), default=0)  # type: ignore[attr-defined]


@contextmanager
def figure(
    name: str, height: float, panels: int = 1, margins: Margins = Margins()
) -> Iterator[tuple[Figure, list[Axes]]]:
    """A figure with ``panels`` axes side by side, in the page's style; ``name`` salts the SVG
    ids so several charts inline in one page never share an id."""
    with matplotlib.rc_context({**STYLE, "svg.hashsalt": name}):
        fig = Figure(figsize=(WIDTH, height))
        axes = fig.subplots(1, panels, squeeze=False)[0].tolist()
        width = (WIDTH - margins.left - margins.right - margins.between * (panels - 1)) / panels
        fig.subplots_adjust(
            left=margins.left / WIDTH,
            right=1 - margins.right / WIDTH,
            bottom=margins.bottom / height,
            top=1 - margins.top / height,
            wspace=margins.between / width,
        )
        yield fig, axes


def svg(fig: Figure, name: str) -> str:
    """The figure as an ``<svg>`` element, ids salted by name; without the XML prologue and
    DOCTYPE (inline in HTML) or the RDF metadata (nothing a reader needs)."""
    buffer = io.StringIO()
    with matplotlib.rc_context({**STYLE, "svg.hashsalt": name}):
        FigureCanvasSVG(fig).print_svg(buffer, metadata={"Date": None, "Creator": None})
    text = buffer.getvalue()
    text = text[text.index("<svg") :]
    start, end = text.find("<metadata>"), text.find("</metadata>")
    return text[:start] + text[end + len("</metadata>") :] if start >= 0 else text


def completeness(steps: list[dict]) -> str | None:
    """Per step and region: units delivered, excused and missing (stacked, counts beside)."""
    bars = []
    for step in steps:
        by_region: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
        for unit in step["units"]:
            by_region[unit["rhf"]][unit["status"]] += 1
        for region in ordered_regions(by_region):
            bars.append((f"{step['step']} · {region}", by_region[region]))
    if not bars:
        return None
    margins = Margins(left=label_inches(label for label, _ in bars), right=1.6, top=0.15)
    with figure("completeness", 0.8 + 0.2 * len(bars), margins=margins) as (fig, (ax,)):
        labels = [label for label, _ in reversed(bars)]
        left = [0] * len(bars)
        for status, colour in STATUS_COLOURS.items():
            counts = [counts.get(status, 0) for _, counts in reversed(bars)]
            drawn = ax.barh(labels, counts, left=left, color=colour, height=0.7,
                            label=STATUS_LABELS[status])  # fmt: skip
            ax.bar_label(drawn, labels=[str(c) if c else "" for c in counts], label_type="center",
                         color="white", fontsize=8)  # fmt: skip
            left = [a + b for a, b in zip(left, counts, strict=True)]
        ax.set_xlabel("enheter (units)")
        ax.xaxis.get_major_locator().set_params(integer=True)
        for label in ax.get_yticklabels():  # the region in its colour
            label.set_color(region_colour(label.get_text().rsplit(" · ", 1)[-1]))
        fig.legend(loc="upper right", fontsize=8)
        return svg(fig, "completeness")


def quality(section: dict) -> str | None:
    """Per unit: the share of its episodes left out, bar in its region's colour, threshold
    drawn as a line."""
    units = section["units"]
    if not any(u["share"] for u in units):  # nothing left out: no chart of zeros
        return None
    labels = [f"{u['name'][:45]} ({u['unit']})" for u in reversed(units)]
    margins = Margins(left=label_inches(labels), top=0.3)
    with figure("quality", 0.9 + 0.24 * len(units), margins=margins) as (fig, (ax,)):
        shares = [100 * u["share"] for u in reversed(units)]
        drawn = ax.barh(labels, shares, color=[region_colour(u["rhf"]) for u in reversed(units)])
        ax.bar_label(drawn, labels=[f"{s:.1f} %" for s in shares], padding=3, fontsize=8)
        limit = 100 * section["threshold"]
        ax.axvline(limit, color="#C62828", linestyle="--")
        ax.text(limit, len(units) - 0.4, f" grense {limit:g} % (threshold)", color="#C62828",
                fontsize=8, va="bottom")  # fmt: skip
        ax.set_xlim(0, max([limit, *shares]) * 1.25)
        ax.set_xlabel("episoder tatt ut, andel av enhetens episoder (%) (episodes excluded)")
        _region_legend(ax, [u["rhf"] for u in units])
        return svg(fig, "quality")


def _region_legend(ax: Axes, regions: object) -> None:
    from matplotlib.patches import Patch

    handles = [Patch(color=region_colour(r), label=r) for r in ordered_regions(regions)]
    ax.legend(handles=handles, title="region", fontsize=8, loc="lower right")


VT_PANELS = (("avviklet", "Avviklet (completed)"), ("ventende", "Ventende (still waiting)"))


def ventetider_regions(rows: list[dict]) -> str | None:
    """Per region, completed and still waiting apart: mean and median days, and the
    fristbrudd share; a suppressed cell is marked, not drawn."""
    cells = {(r["group_value"], r["measure"]): r for r in rows if r["group_type"] == "rhf"}
    regions = ordered_regions(region for region, _ in cells)
    if not any(not c["suppressed"] and c["n"] for c in cells.values()):
        return None
    with figure("ventetider-regions", 3.2, panels=3, margins=Margins(top=0.6)) as (fig, axes):
        for ax, (measure, title) in zip(axes, VT_PANELS, strict=False):
            _days_panel(ax, [(r, cells.get((r, measure))) for r in regions], title)
        _fristbrudd_panel(axes[2], regions, cells)
        return svg(fig, "ventetider-regions")


def _days_panel(ax: Axes, cells: list[tuple[str, dict | None]], title: str) -> None:
    """Mean (solid) and median (hatched) days per region."""
    for i, (region, cell) in enumerate(cells):
        if cell is None or cell["suppressed"] or cell["mean_days"] is None:
            _mark_suppressed(ax, i, cell)
            continue
        for offset, key, hatch in ((-0.2, "mean_days", None), (0.2, "median_days", "///")):
            bar = ax.bar(i + offset, cell[key], width=0.38, color=region_colour(region),
                         hatch=hatch, edgecolor="white")  # fmt: skip
            ax.bar_label(bar, labels=[f"{cell[key]:.0f}"], fontsize=7)
    ax.set_xticks(range(len(cells)), [region for region, _ in cells])
    ax.set_title(f"{title}\nsnitt / median (mean / median, hatched)", fontsize=9)
    ax.set_ylabel("ventetid, dager (waiting days)")


def _mark_suppressed(ax: Axes, x: float, cell: dict | None) -> None:
    """Where a suppressed (or absent) cell's bar would be: a note, no bar."""
    text = SUPPRESSED if cell is not None and cell["suppressed"] else "ingen"
    ax.text(x, 0.03, text, ha="center", va="bottom", fontsize=8, color="#444444", style="italic",
            rotation=90, transform=ax.get_xaxis_transform())  # fmt: skip


def _fristbrudd_panel(ax: Axes, regions: list[str], cells: dict) -> None:
    for i, region in enumerate(regions):
        for offset, (measure, _) in zip((-0.2, 0.2), VT_PANELS, strict=True):
            cell = cells.get((region, measure))
            if cell is None or cell["suppressed"] or cell["fristbrudd_pct"] is None:
                _mark_suppressed(ax, i + offset, cell)
                continue
            bar = ax.bar(i + offset, cell["fristbrudd_pct"], width=0.38,
                         color=region_colour(region), edgecolor="white",
                         hatch="///" if measure == "ventende" else None)  # fmt: skip
            ax.bar_label(bar, labels=[f"{cell['fristbrudd_pct']:.1f}"], fontsize=7)
    ax.set_xticks(range(len(regions)), regions)
    ax.set_title("Fristbrudd (past deadline)\navviklet / ventende (hatched)", fontsize=9)
    ax.set_ylabel("andel fristbrudd, % (share)")


def ventetider_months(months: list[dict]) -> str | None:
    """Mean days of completed waits per month of the window and region, from each month's own
    delivery; a suppressed point is not drawn (the line breaks there)."""
    delivered = [m for m in months if m["rows"]]
    if len(delivered) < 2:
        return None
    labels = [m["month"] for m in months]
    regions = ordered_regions(
        r["group_value"] for m in delivered for r in m["rows"] if r["group_type"] == "rhf"
    )
    with figure("ventetider-months", 3.0, panels=2) as (fig, axes):
        for ax, (measure, title) in zip(axes, VT_PANELS, strict=True):
            for j, region in enumerate(regions):
                values = [_month_value(m, region, measure) for m in months]
                colour = region_colour(region)
                ax.plot(range(len(months)), values, marker="o", color=colour, label=region)
                for i, month in enumerate(months):
                    if _suppressed(month, region, measure):  # the line breaks here: say why
                        ax.text(i, 0.03 + 0.07 * j, SUPPRESSED, color=colour, fontsize=7,
                                ha="center", transform=ax.get_xaxis_transform())  # fmt: skip
            ax.set_xticks(range(len(months)), labels)
            ax.set_xlim(-0.5, len(months) - 0.5)
            ax.set_title(title, fontsize=9)
            ax.set_ylabel("snitt ventetid, dager (mean waiting days)")
            ax.set_xlabel("måned (month)")
        axes[0].legend(title="region", fontsize=8)
        return svg(fig, "ventetider-months")


def _suppressed(month: dict, region: str, measure: str) -> bool:
    """Whether a region's cell of a month's delivery is suppressed."""
    return any(
        row["suppressed"]
        for row in month["rows"]
        if (row["group_type"], row["group_value"], row["measure"]) == ("rhf", region, measure)
    )


def _month_value(month: dict, region: str, measure: str) -> float:
    """A region's mean days in a month; NaN (no point drawn) when suppressed or absent."""
    for row in month["rows"]:
        if (row["group_type"], row["group_value"], row["measure"]) != ("rhf", region, measure):
            continue
        if row["suppressed"] or row["mean_days"] is None:
            return float("nan")
        return row["mean_days"]
    return float("nan")


def isf(section: dict) -> str | None:
    """Refund per month stacked by region (the private part hatched when the delivery tells
    public from private), and DRG points per month and region."""
    if not section["months"]:
        return None
    months = sorted({r["month"] for r in section["months"]})
    regions = ordered_regions(r["rhf"] for r in section["months"])
    totals = {(r["rhf"], r["month"]): r for r in section["months"]}
    private = defaultdict(Decimal)
    for row in section["split"]:
        if row["part"] == "private":
            private[row["rhf"], row["month"]] += Decimal(row["refund"] or 0)
    margins = Margins(right=0.9, between=1.0)
    with figure("isf", 3.4, panels=2, margins=margins) as (fig, (refund_ax, points_ax)):
        bottom = [0.0] * len(months)
        width = 0.8 / max(len(regions), 1)
        for j, region in enumerate(regions):
            refunds = [float(Decimal(totals.get((region, m), {}).get("refund") or 0)) / 1e6
                       for m in months]  # fmt: skip
            privates = [float(private[region, m]) / 1e6 for m in months]
            publics = [a - b for a, b in zip(refunds, privates, strict=True)]
            colour = region_colour(region)
            refund_ax.bar(months, publics, bottom=bottom, color=colour, label=region)
            top = [a + b for a, b in zip(bottom, publics, strict=True)]
            refund_ax.bar(months, privates, bottom=top, color=colour, hatch="xx",
                          edgecolor="white")  # fmt: skip
            bottom = [a + b for a, b in zip(bottom, refunds, strict=True)]
            points = [totals.get((region, m), {}).get("points") or 0 for m in months]
            x = [i - 0.4 + width * (j + 0.5) for i in range(len(months))]
            points_ax.bar(x, points, width=width, color=colour, label=region)
        for i, total in enumerate(bottom):
            refund_ax.text(i, total, f"{total:.1f}", ha="center", va="bottom", fontsize=7)
        refund_ax.set_ylabel("refusjon, mill. NOK (refund, NOK million)")
        refund_ax.set_title("Refusjon per måned (privat skravert: private hatched)", fontsize=9)
        points_ax.set_xticks(range(len(months)), months)
        points_ax.set_ylabel("DRG-poeng (points)")
        points_ax.set_title("DRG-poeng per måned og region (points)", fontsize=9)
        for ax in (refund_ax, points_ax):
            ax.set_xlabel("måned (month)")
        fig.legend(*refund_ax.get_legend_handles_labels(), title="region", fontsize=8,
                   loc="upper right")  # fmt: skip
        return svg(fig, "isf")


def gjestepasient(matrix: list[dict]) -> str | None:
    """Who pays whom: amount per home region (pays, rows) and treating region (is paid,
    columns), summed over the period's months, with the cases in each cell."""
    if not matrix:
        return None
    home = ordered_regions(r["home_rhf"] for r in matrix)
    treating = ordered_regions(r["treating_rhf"] for r in matrix)
    amount: dict[tuple[str, str], Decimal] = defaultdict(Decimal)
    cases: dict[tuple[str, str], int] = defaultdict(int)
    for row in matrix:
        key = (row["home_rhf"], row["treating_rhf"])
        amount[key] += Decimal(row["amount"] or 0)
        cases[key] += int(row["cases"])
    grid = [[float(amount.get((h, t), 0)) / 1000 for t in treating] for h in home]
    margins = Margins(left=1.0, right=0.2, bottom=0.6, top=0.15)
    with figure("gjestepasient", 1.0 + 0.55 * len(home), margins=margins) as (fig, (ax,)):
        image = ax.imshow(grid, cmap="Blues", aspect="auto")
        ax.grid(False)
        peak = max(max(row) for row in grid) or 1
        for i, h in enumerate(home):
            for j, t in enumerate(treating):
                if (h, t) not in cases:
                    ax.text(j, i, "–", ha="center", va="center", color="#999999")
                    continue
                colour = "white" if grid[i][j] > peak / 2 else "black"
                ax.text(j, i, f"{grid[i][j]:,.0f}\n{cases[h, t]} saker".replace(",", " "),
                        ha="center", va="center", fontsize=8, color=colour)  # fmt: skip
        ax.set_xticks(range(len(treating)), treating)
        ax.set_yticks(range(len(home)), home)
        for label in [*ax.get_xticklabels(), *ax.get_yticklabels()]:
            label.set_color(region_colour(label.get_text()))
            label.set_fontweight("bold")
        ax.set_xlabel("behandlende region får (treating region, is paid)")
        ax.set_ylabel("bostedsregion betaler (home region, pays)")
        fig.colorbar(image, ax=ax, label="beløp, 1000 NOK (amount, NOK thousand)")
        return svg(fig, "gjestepasient")
