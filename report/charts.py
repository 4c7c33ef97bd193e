"""One function per chart: report data in, a matplotlib Figure out, the same size every time.

matplotlib's object-oriented API (`matplotlib.figure.Figure`, never pyplot) renders through the
Agg rasteriser: no display, no browser, no global figure state, and the DejaVu fonts it ships make
the PNGs look the same on every machine. A chart with nothing to draw still renders, with a line
that says why, so the page always has every chart.
"""

from __future__ import annotations

import io
import math
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

from matplotlib.figure import Figure
from matplotlib.ticker import FixedLocator

from report.data import ReportData

WIDTH_IN, HEIGHT_IN, DPI = 10.0, 5.0, 100
SIZE_PX = (int(WIDTH_IN * DPI), int(HEIGHT_IN * DPI))

STAGES = ("not_integrated", "sandbox", "production", "dormant")
STAGE_COLORS = {
    "not_integrated": "#9aa5b1",
    "sandbox": "#3e7cb1",
    "production": "#2a9d5c",
    "dormant": "#e0b04a",
}
FUNNEL_STEPS = (
    ("signed up", None, "#5b6770"),
    ("first call", "share_first_call_30d", "#9aa5b1"),
    ("sandbox", "share_sandbox_30d", "#3e7cb1"),
    ("production", "share_production_30d", "#2a9d5c"),
)
DURATION_TICKS = (
    (1 / 60, "1 min"),
    (10 / 60, "10 min"),
    (1, "1 h"),
    (6, "6 h"),
    (24, "1 day"),
    (72, "3 days"),
    (168, "1 week"),
    (672, "4 weeks"),
    (2160, "90 days"),
)
ENGAGEMENT_BARS = (
    ("delivered", "delivered", "#5b6770"),
    ("opened", "unique_opens", "#3e7cb1"),
    ("clicked", "unique_clicks", "#2a9d5c"),
    ("unsubscribed", "unsubscribes", "#d1495b"),
)


@dataclass(frozen=True)
class ChartSpec:
    """A chart of the report: file name, title, the question it answers, how to draw it."""

    name: str
    title: str
    question: str
    draw: Callable[[Figure, ReportData], str | None]  # returns a note when there is no data


def _figure() -> Figure:
    fig = Figure(figsize=(WIDTH_IN, HEIGHT_IN), dpi=DPI, layout="constrained")
    fig.patch.set_facecolor("white")
    return fig


def _empty(ax: Any, note: str) -> str:
    ax.text(0.5, 0.5, note, ha="center", va="center", fontsize=14, color="#5b6770",
            transform=ax.transAxes)  # fmt: skip
    ax.set_xticks([])
    ax.set_yticks([])
    return note


def _percent_axis(ax: Any, axis: str = "y") -> None:
    from matplotlib.ticker import PercentFormatter

    (ax.yaxis if axis == "y" else ax.xaxis).set_major_formatter(PercentFormatter(1.0, decimals=0))


def draw_signup_funnel(fig: Figure, data: ReportData) -> str | None:
    """Bars per weekly sign-up cohort: the share reaching each funnel stage."""
    ax = fig.add_subplot()
    ax.set_title("Weekly sign-up cohorts: share reaching each stage within 30 days", loc="left")
    if not data.cohorts:
        return _empty(ax, "no sign-ups in the last weeks")
    n = len(data.cohorts)
    width = 0.8 / len(FUNNEL_STEPS)
    for i, (label, column, color) in enumerate(FUNNEL_STEPS):
        shares = [1.0 if column is None else float(c[column] or 0) for c in data.cohorts]
        xs = [k + (i - (len(FUNNEL_STEPS) - 1) / 2) * width for k in range(n)]
        ax.bar(xs, shares, width=width, color=color, label=label)
    labels = []
    for c in data.cohorts:
        mark = "" if c["is_complete_30d"] else "*"
        labels.append(f"{c['cohort_week']:%b %d}{mark}\nn={c['signups']}")
    ax.set_xticks(range(n), labels, fontsize=8)
    ax.set_ylim(0, 1.08)
    _percent_axis(ax)
    ax.legend(ncols=4, loc="upper right", fontsize=9, frameon=False)
    ax.grid(axis="y", alpha=0.3)
    if any(not c["is_complete_30d"] for c in data.cohorts):
        ax.set_xlabel("cohort week (* = younger than 30 days, still filling up)")
    return None


def draw_stage_counts(fig: Figure, data: ReportData) -> str | None:
    """Stacked area of how many developers are in each stage, day by day."""
    ax = fig.add_subplot()
    ax.set_title("Developers in each funnel stage, per day", loc="left")
    if not data.stage_counts:
        return _empty(ax, "no stage history yet")
    days = sorted({r["stage_date"] for r in data.stage_counts})
    counts = {(r["stage_date"], r["stage"]): r["developers"] for r in data.stage_counts}
    series = [[counts.get((d, s), 0) for d in days] for s in STAGES]
    ax.stackplot(days, series, labels=STAGES, colors=[STAGE_COLORS[s] for s in STAGES])
    ax.set_xlim(days[0], days[-1])
    ax.set_ylabel("developers")
    ax.legend(loc="upper left", fontsize=9, frameon=False, ncols=4)
    ax.grid(axis="y", alpha=0.3)
    fig.autofmt_xdate()
    return None


def draw_stage_transitions(fig: Figure, data: ReportData) -> str | None:
    """Stacked bars of the daily moves between stages (the six most frequent named)."""
    ax = fig.add_subplot()
    ax.set_title(
        "Daily stage transitions (developers moving from one stage to another)", loc="left"
    )
    if not data.transitions:
        return _empty(ax, "no stage transitions yet")
    days = sorted({r["stage_date"] for r in data.transitions})
    totals: dict[tuple[str, str], int] = defaultdict(int)
    for r in data.transitions:
        totals[(r["from_stage"], r["to_stage"])] += r["developers"]
    # the six most frequent moves by name, the rest together
    top = [k for k, _ in sorted(totals.items(), key=lambda kv: (-kv[1], kv[0]))[:6]]
    per_day: dict[tuple[str, str] | None, dict[date, int]] = defaultdict(lambda: defaultdict(int))
    for r in data.transitions:
        key = (r["from_stage"], r["to_stage"])
        per_day[key if key in top else None][r["stage_date"]] += r["developers"]
    bottom = [0] * len(days)
    for key in [*top, None]:
        if key not in per_day:
            continue
        values = [per_day[key].get(d, 0) for d in days]
        label = f"{key[0]} → {key[1]}" if key else "other moves"
        color = STAGE_COLORS.get(key[1], "#c8ccd0") if key else "#c8ccd0"
        hatch = "//" if key and key[0] == "signed_up" else None
        ax.bar(days, values, bottom=bottom, label=label, color=color, hatch=hatch,
               edgecolor="white", linewidth=0.3)  # fmt: skip
        bottom = [b + v for b, v in zip(bottom, values, strict=True)]
    ax.set_ylabel("developers")
    ax.legend(loc="upper left", fontsize=8, frameon=False, ncols=2)
    ax.grid(axis="y", alpha=0.3)
    fig.autofmt_xdate()
    return None


def _median(values: list[float]) -> float:
    ordered = sorted(values)
    mid = len(ordered) // 2
    return ordered[mid] if len(ordered) % 2 else (ordered[mid - 1] + ordered[mid]) / 2


def draw_ttfhw(fig: Figure, data: ReportData) -> str | None:
    """Histogram of time from sign-up to the first successful call, with its median."""
    ax = fig.add_subplot()
    ax.set_title("Time to first Hello World (sign-up to first successful call)", loc="left")
    hours = [h for h in data.ttfhw_hours if h >= 0]
    if not hours:
        return _empty(ax, "no developer has made a successful call yet")
    # log-spaced bins: minutes to weeks in one picture
    low = max(min(hours), 1 / 60)
    high = max(max(hours), low * 2)
    edges = [low * (high / low) ** (i / 30) for i in range(31)]
    ax.hist([max(h, low) for h in hours], bins=edges, color="#3e7cb1", edgecolor="white")
    ax.set_xscale("log")
    # ticks at durations people say out loud, within the drawn range
    ticks = [(t, label) for t, label in DURATION_TICKS if edges[0] <= t <= edges[-1]]
    ax.set_xticks([t for t, _ in ticks], [label for _, label in ticks])
    ax.minorticks_off()
    median = _median(hours)
    ax.axvline(max(median, low), color="#d1495b", linewidth=2)
    ax.text(max(median, low), 0.97, f" median {_duration(median)} ", color="#d1495b", va="top",
            fontsize=11, transform=ax.get_xaxis_transform(),
            bbox={"facecolor": "white", "edgecolor": "none", "alpha": 0.85})  # fmt: skip
    ax.set_xlabel("time after sign-up (log scale)")
    ax.set_ylabel("developers")
    ax.grid(axis="y", alpha=0.3)
    return None


def _duration(hours: float) -> str:
    if hours < 1:
        return f"{hours * 60:.0f} min"
    if hours < 48:
        return f"{hours:.1f} h"
    return f"{hours / 24:.1f} days"


def draw_campaign_lift(fig: Figure, data: ReportData) -> str | None:
    """Each campaign's lift over its holdout with a 95 % interval."""
    ax = fig.add_subplot()
    ax.set_title(
        "Campaign lift: treated minus held-out share reaching the goal, 95 % interval", loc="left"
    )
    if data.lift is None:
        return _empty(ax, "the lift marts are not built yet (onramp build)")
    rows = [r for r in data.lift if r["share_difference"] is not None]
    if not rows:
        return _empty(ax, "no campaign with a holdout and a closed goal window yet")
    ys = list(range(len(rows)))[::-1]
    for y, r in zip(ys, rows, strict=True):
        d = float(r["share_difference"])
        lower = float(r["difference_lower_95"])
        upper = float(r["difference_upper_95"])
        color = "#9aa5b1" if r["is_too_small"] else ("#2a9d5c" if lower > 0 else "#3e7cb1")
        ax.errorbar(d, y, xerr=[[d - lower], [upper - d]], fmt="o", color=color, capsize=5,
                    markersize=8, linewidth=2)  # fmt: skip
        note = (
            f"{float(r['treated_share']):.0%} vs {float(r['held_out_share']):.0%}"
            f"  (n={r['treated_members']}/{r['held_out_members']})"
            + ("  too small" if r["is_too_small"] else "")
        )
        ax.annotate(note, (upper, y), xytext=(8, 0), textcoords="offset points", va="center",
                    fontsize=9, color=color)  # fmt: skip
    ax.axvline(0, color="#5b6770", linewidth=1)
    ax.set_yticks(ys, [r["campaign"] for r in rows])
    lows = [float(r["difference_lower_95"]) for r in rows]
    highs = [float(r["difference_upper_95"]) for r in rows]
    left, right = min(min(lows), 0), max(max(highs), 0)
    span = max(0.05, right - left)
    # room on the right for the shares and group sizes written after each interval
    ax.set_xlim(left - 0.05 * span, right + 0.5 * span)
    ax.xaxis.set_major_locator(FixedLocator([t / 10 for t in range(-10, 11)]))
    ax.set_ylim(-0.7, len(rows) - 0.3)
    _percent_axis(ax, "x")
    ax.set_xlabel("difference in share reaching the goal (percentage points), treated - held out")
    ax.grid(axis="x", alpha=0.3)
    return None


def _step_number(step: Any) -> float:
    try:
        return float(step)
    except (TypeError, ValueError):
        return math.inf


def draw_engagement(fig: Figure, data: ReportData) -> str | None:
    """Delivered, opened, clicked and unsubscribed recipients per campaign step."""
    ax = fig.add_subplot()
    ax.set_title("Engagement per campaign step (unique recipients)", loc="left")
    if not data.engagement:
        return _empty(ax, "no engagement events yet")
    rows = sorted(data.engagement, key=lambda r: (r["campaign"], _step_number(r["step"])))
    labels = [f"{r['campaign']}\nstep {r['step']}" for r in rows]
    width = 0.8 / len(ENGAGEMENT_BARS)
    for i, (label, column, color) in enumerate(ENGAGEMENT_BARS):
        xs = [k + (i - (len(ENGAGEMENT_BARS) - 1) / 2) * width for k in range(len(rows))]
        ax.bar(xs, [int(r[column] or 0) for r in rows], width=width, color=color, label=label)
    ax.set_xticks(range(len(rows)), labels, fontsize=7 if len(rows) > 8 else 9)
    ax.set_ylabel("recipients")
    ax.legend(ncols=4, loc="upper right", fontsize=9, frameon=False)
    ax.grid(axis="y", alpha=0.3)
    return None


CHARTS: tuple[ChartSpec, ...] = (
    ChartSpec(
        "signup_funnel",
        "Sign-up cohort funnel",
        "Of the developers who signed up in a week, how many made a first call, reached "
        "sandbox traffic and production within 30 days? Is onboarding getting better?",
        draw_signup_funnel,
    ),
    ChartSpec(
        "stage_counts",
        "Funnel stages over time",
        "How many developers are not integrated, in sandbox, in production or dormant each "
        "day, and is the production band growing?",
        draw_stage_counts,
    ),
    ChartSpec(
        "stage_transitions",
        "Daily stage transitions",
        "How many developers move between stages each day, and which way: up the funnel "
        "(sandbox to production) or out of it (to dormant)?",
        draw_stage_transitions,
    ),
    ChartSpec(
        "ttfhw",
        "Time to first Hello World",
        "How long after signing up do developers make their first successful call, and what "
        "is the typical (median) wait?",
        draw_ttfhw,
    ),
    ChartSpec(
        "campaign_lift",
        "Campaign lift against holdouts",
        "Did a campaign's emails move members to its goal (within the goal window) more often "
        "than the held-out members who got nothing? An interval clear of zero says yes.",
        draw_campaign_lift,
    ),
    ChartSpec(
        "engagement",
        "Engagement per campaign step",
        "Which steps of each sequence are delivered, opened and clicked, and which ones make "
        "people unsubscribe?",
        draw_engagement,
    ),
)


def render_png(spec: ChartSpec, data: ReportData) -> tuple[bytes, str | None]:
    """The chart as PNG bytes of exactly SIZE_PX pixels, and its no-data note if any."""
    fig = _figure()
    note = spec.draw(fig, data)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=DPI, facecolor="white")
    return buffer.getvalue(), note


def write_png(spec: ChartSpec, data: ReportData, directory: Path) -> tuple[Path, bytes, str | None]:
    """Render a chart into `directory`; returns its path, bytes and no-data note."""
    png, note = render_png(spec, data)
    path = directory / f"{spec.name}.png"
    path.write_bytes(png)
    return path, png, note
