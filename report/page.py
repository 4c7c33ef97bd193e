"""The report as one self-contained HTML page: every chart inline as a data URI, no external file.

The page can be mailed, attached to a ticket or opened from a file share and still show
everything; the PNGs beside it are for slides and chat.
"""

from __future__ import annotations

import base64
import html
from datetime import date
from typing import Any

from report.data import ReportData

STYLE = """
body { font-family: -apple-system, 'Segoe UI', Helvetica, Arial, sans-serif; margin: 2rem auto;
       max-width: 1040px; color: #1f2933; background: #f5f7fa; }
h1 { margin-bottom: 0.2rem; } .meta { color: #5b6770; margin-top: 0; }
section { background: white; border-radius: 8px; padding: 1rem 1.2rem; margin: 1.2rem 0;
          box-shadow: 0 1px 3px rgba(0,0,0,0.08); }
section h2 { margin: 0 0 0.3rem 0; font-size: 1.15rem; }
section p.question { margin: 0 0 0.6rem 0; color: #3e4c59; }
img { width: 100%; height: auto; display: block; }
table { border-collapse: collapse; font-size: 0.85rem; margin-top: 0.6rem; width: 100%; }
th, td { padding: 0.25rem 0.5rem; border-bottom: 1px solid #e4e7eb; text-align: right; }
th:first-child, td:first-child { text-align: left; }
.note { color: #8a4b00; }
"""


def _pct(value: Any) -> str:
    return "–" if value is None else f"{float(value):+.1%}"


def _share(value: Any) -> str:
    return "–" if value is None else f"{float(value):.1%}"


def lift_table(data: ReportData) -> str:
    """The lift numbers under the chart, for people who want the figures."""
    if not data.lift:
        return ""
    head = ("campaign", "goal", "treated", "held out", "treated share", "held-out share",
            "difference", "95 % interval", "median days to goal (treated / held out)")  # fmt: skip
    rows = []
    for r in data.lift:
        goal = (
            "leaves segment"
            if r["goal_type"] == "leaves_segment"
            else f"enters {r['goal_segment']}"
        )
        interval = (
            "–" if r["difference_lower_95"] is None
            else f"{_pct(r['difference_lower_95'])} to {_pct(r['difference_upper_95'])}"
        )  # fmt: skip
        medians = " / ".join(
            "–" if v is None else f"{float(v):g}"
            for v in (r["treated_median_days_to_goal"], r["held_out_median_days_to_goal"])
        )
        flag = " (too small)" if r["is_too_small"] else ""
        cells = (r["campaign"] + flag, goal, r["treated_members"], r["held_out_members"],
                 _share(r["treated_share"]), _share(r["held_out_share"]),
                 _pct(r["share_difference"]), interval, medians)  # fmt: skip
        rows.append("<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in cells) + "</tr>")
    header = "".join(f"<th>{html.escape(h)}</th>" for h in head)
    return f"<table><thead><tr>{header}</tr></thead><tbody>{''.join(rows)}</tbody></table>"


def render_page(as_of: date, data: ReportData, charts: list[tuple[Any, bytes, str | None]]) -> str:
    """charts: (ChartSpec, PNG bytes, no-data note) in page order; an empty chart says why."""
    sections = []
    for spec, png, _note in charts:
        uri = "data:image/png;base64," + base64.b64encode(png).decode("ascii")
        extra = lift_table(data) if spec.name == "campaign_lift" else ""
        sections.append(
            f'<section id="{spec.name}"><h2>{html.escape(spec.title)}</h2>'
            f'<p class="question">{html.escape(spec.question)}</p>'
            f'<img alt="{html.escape(spec.title)}" src="{uri}">{extra}</section>'
        )
    stale = ""
    if data.last_built_day and data.last_built_day < as_of:
        stale = (
            f' <span class="note">(the marts end on {data.last_built_day}: '
            "run onramp build for a later day)</span>"
        )
    return (
        '<!doctype html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>onramp funnel report, as of {as_of}</title><style>{STYLE}</style></head>"
        f'<body><h1>onramp funnel report</h1><p class="meta">as of {as_of} (UTC days)'
        f"{stale}</p>{''.join(sections)}</body></html>\n"
    )
