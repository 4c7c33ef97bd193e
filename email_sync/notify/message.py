"""The team message for one segment and run: a headline with counts, up to N members, "and N more".

One payload (a plain dict, stored in the ledger before anything is posted) renders three ways:
Slack Block Kit, the generic webhook's JSON body, and plain text for dry runs and the CLI.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

SECTION_LIMIT = 2900  # Slack refuses a section text over 3000 characters


def member_link(dashboard_url: str | None, developer_id: str | None) -> str | None:
    """The developer's page in the team's dashboard: `{developer_id}` in the URL is replaced,
    else the id is appended as a path segment."""
    if not dashboard_url or not developer_id:
        return None
    if "{developer_id}" in dashboard_url:
        return dashboard_url.replace("{developer_id}", quote(developer_id, safe=""))
    return dashboard_url.rstrip("/") + "/" + quote(developer_id, safe="")


def headline(payload: dict[str, Any]) -> str:
    """`Stopped traffic: 3 entered, 1 left` (counts after the segment's filter)."""
    title = payload.get("headline") or payload["segment"].replace("_", " ").capitalize()
    parts = []
    for change, verb in (("entered", "entered"), ("exited", "left")):
        if change in payload:
            parts.append(f"{payload[change]['count']} {verb}")
    return f"{title}: {', '.join(parts)}"


def _member_text(member: dict[str, Any], *, slack: bool) -> str:
    name = member.get("name") or member.get("developer_id") or "unknown developer"
    if slack:
        name = _escape(name)
        link = member.get("link")
        shown = f"*<{link}|{name}>*" if link else f"*{name}*"
    else:
        shown = name
    bits = [shown]
    if member.get("company"):
        bits.append(_escape(member["company"]) if slack else member["company"])
    for column, value in (member.get("columns") or {}).items():
        if value in (None, ""):
            continue
        text = _escape(str(value)) if slack else str(value)
        bits.append(f"{column}: `{text}`" if slack else f"{column}: {text}")
    return " · ".join(bits)


def _escape(text: str) -> str:
    """Slack mrkdwn control characters (the only three it asks to escape)."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _lines(payload: dict[str, Any], *, slack: bool) -> list[str]:
    lines: list[str] = []
    for change, verb in (("entered", "Entered"), ("exited", "Left")):
        part = payload.get(change)
        if not part or not part["count"]:
            continue
        lines.append(f"*{verb}*" if slack else f"{verb}:")
        lines.extend(f"• {_member_text(m, slack=slack)}" for m in part["members"])
        more = part["count"] - len(part["members"])
        if more > 0:
            lines.append(f"and {more} more")
    return lines


def as_text(payload: dict[str, Any]) -> str:
    """Plain text: what a dry run prints and the fallback Slack shows in notifications."""
    body = "\n".join(f"  {line}" for line in _lines(payload, slack=False))
    return f"{headline(payload)} (segment {payload['segment']}, as of {payload['as_of']})\n{body}"


def as_slack(payload: dict[str, Any]) -> dict[str, Any]:
    """`text` (notification fallback) and Block Kit `blocks` for an incoming webhook."""
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": headline(payload)[:150]}}
    ]
    chunk: list[str] = []
    for line in _lines(payload, slack=True):
        if chunk and len("\n".join([*chunk, line])) > SECTION_LIMIT:
            blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": "\n".join(chunk)}})
            chunk = []
        chunk.append(line)
    if chunk:
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": "\n".join(chunk)}})
    blocks.append(
        {
            "type": "context",
            "elements": [
                {
                    "type": "mrkdwn",
                    "text": f"segment `{payload['segment']}` · as of {payload['as_of']} · onramp",
                }
            ],
        }
    )
    return {"text": headline(payload), "blocks": blocks}


def as_webhook_body(payload: dict[str, Any]) -> dict[str, Any]:
    """The generic webhook's JSON body (documented in the README)."""
    return {"type": "segment.changed", "headline": headline(payload), **payload}
