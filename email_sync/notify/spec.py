"""`config.meta.onramp.notify` of a segment: which team channel hears about its changes, and how.

A notification is declared in YAML next to the segment's SQL, so adding one needs no Python:

    notify:
      when: entered                 # entered | exited | both
      only: {column: plan, not_in: [free]}   # optional: keep members by a column of the segment
      show: [company_name, top_route]        # member columns printed after the name
      max_members: 10               # members listed; "and N more" past that
      headline: Stopped sending traffic a week ago   # optional, default from the segment name
      slack: {url_env: ONRAMP_SLACK_WEBHOOK_URL}
      webhook: {url_env: ONRAMP_TEAM_WEBHOOK_URL, secret_env: ONRAMP_TEAM_WEBHOOK_SECRET}

Only names of environment variables appear here: a webhook URL is a secret and never lives in
the project, the manifest, a log or Dagster metadata.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from onramp.errors import OnrampError

_NAME = re.compile(r"^[a-z_][a-z0-9_]*$")
_ENV = re.compile(r"^[A-Z_][A-Z0-9_]*$")
WHEN = ("entered", "exited", "both")
MAX_MEMBERS_LIMIT = 40  # Slack allows 50 blocks per message; the rest is headline and footer
_KEYS = {"when", "only", "show", "max_members", "headline", "slack", "webhook"}


class NotifySpecError(OnrampError):
    """A segment's notify block cannot be used; the message names the segment and the key."""


@dataclass(frozen=True)
class MemberFilter:
    """Keep members whose `column` is in / not in `values`, or is true when no values are given."""

    column: str
    values: tuple[str, ...] = ()
    negate: bool = False


@dataclass(frozen=True)
class Destination:
    """One place to post: `slack` (incoming webhook) or `webhook` (generic JSON, HMAC-signed)."""

    kind: str
    url_env: str
    secret_env: str | None = None


@dataclass(frozen=True)
class NotifySpec:
    """How one segment's membership changes reach the team."""

    when: str = "entered"
    only: MemberFilter | None = None
    show: tuple[str, ...] = ()
    max_members: int = 10
    headline: str | None = None
    destinations: tuple[Destination, ...] = ()

    def reports(self, change: str) -> bool:
        """Whether entries (`entered`) or exits (`exited`) are part of the message."""
        return self.when in (change, "both")


def _fail(segment: str, key: str, problem: str) -> NotifySpecError:
    return NotifySpecError(f"segment {segment}: notify.{key} {problem}")


def _destination(segment: str, kind: str, raw: Any) -> Destination:
    if isinstance(raw, str):
        raw = {"url_env": raw}
    if not isinstance(raw, dict):
        raise _fail(segment, kind, "must be a mapping like {url_env: ONRAMP_SLACK_WEBHOOK_URL}")
    unknown = set(raw) - {"url_env", "secret_env"}
    if unknown:
        raise _fail(segment, f"{kind}.{sorted(unknown)[0]}", "is not a known key")
    url_env = str(raw.get("url_env") or "")
    if not _ENV.match(url_env):
        raise _fail(segment, f"{kind}.url_env", "must name an environment variable (A-Z, 0-9, _)")
    secret_env = raw.get("secret_env")
    if kind == "webhook" and not secret_env:
        raise _fail(segment, "webhook.secret_env", "is required: generic webhooks are signed")
    if secret_env is not None and not _ENV.match(str(secret_env)):
        raise _fail(segment, f"{kind}.secret_env", "must name an environment variable")
    return Destination(kind, url_env, str(secret_env) if secret_env else None)


def _filter(segment: str, raw: Any) -> MemberFilter | None:
    if raw is None:
        return None
    if isinstance(raw, str):
        raw = {"column": raw}
    if not isinstance(raw, dict) or not _NAME.match(str(raw.get("column") or "")):
        raise _fail(segment, "only", "must be {column: NAME} or {column: NAME, in|not_in: [...]}")
    unknown = set(raw) - {"column", "in", "not_in"}
    if unknown or ("in" in raw and "not_in" in raw):
        raise _fail(segment, "only", "takes column plus at most one of in / not_in")
    values = raw.get("in", raw.get("not_in", []))
    if isinstance(values, str | int | float | bool):
        values = [values]
    return MemberFilter(
        column=str(raw["column"]),
        values=tuple(str(v) for v in values),
        negate="not_in" in raw,
    )


def notify_from_meta(segment: str, raw: Any) -> NotifySpec | None:
    """Parse a notify block (None when absent); one `NotifySpecError` line for a bad value."""
    if raw is None or raw is False:
        return None
    if not isinstance(raw, dict):
        raise NotifySpecError(f"segment {segment}: notify must be a mapping")
    unknown = set(raw) - _KEYS
    if unknown:
        raise _fail(segment, sorted(unknown)[0], "is not a known key")
    when = str(raw.get("when", "entered"))
    if when not in WHEN:
        raise _fail(segment, "when", f"must be entered, exited or both, got {when!r}")
    show = raw.get("show") or []
    if isinstance(show, str):
        show = [show]
    for column in show:
        if not _NAME.match(str(column)):
            raise _fail(segment, "show", f"must list column names, got {column!r}")
    try:
        max_members = int(raw.get("max_members", 10))
    except (TypeError, ValueError) as exc:
        raise _fail(segment, "max_members", "must be an integer") from exc
    if not 0 <= max_members <= MAX_MEMBERS_LIMIT:
        raise _fail(segment, "max_members", f"must be between 0 and {MAX_MEMBERS_LIMIT}")
    destinations = tuple(
        _destination(segment, kind, raw[kind]) for kind in ("slack", "webhook") if raw.get(kind)
    )
    if not destinations:
        raise _fail(segment, "slack", "or notify.webhook is required (where to post)")
    headline = raw.get("headline")
    return NotifySpec(
        when=when,
        only=_filter(segment, raw.get("only")),
        show=tuple(str(c) for c in show),
        max_members=max_members,
        headline=str(headline) if headline else None,
        destinations=destinations,
    )
