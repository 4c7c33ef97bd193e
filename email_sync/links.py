"""Every address the shipped emails link to, from one file (`templates/links.yml`), and the UTM
parameters every link in a sent email carries.

Templates name a page (`link('quickstart')`, `landing(role)`), never an address, so a user moves
their domain by editing `site` (and the docs / dashboard / status hosts) in one place.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import yaml

from onramp.errors import OnrampError
from onramp.roles import ROLES as KNOWN_ROLES

HOSTS = ("site", "docs", "dashboard", "status")
# Every role a welcome email is written for: the known roles plus `unknown` (no role given).
ROLES = (*KNOWN_ROLES, "unknown")
_HREF = re.compile(r'(href=")(https?://[^"]+)(")')
_BARE = re.compile(r"https?://[^\s<>\"')\]]+")


class LinksError(OnrampError):
    """links.yml is missing a host, a page or a role's landing page, or cannot be read."""


@dataclass(frozen=True)
class Links:
    """Hosts, named pages and per-role landing pages, with `{host}` placeholders resolved."""

    hosts: dict[str, str]
    pages: dict[str, str]
    landing_pages: dict[str, str]

    def page(self, name: str) -> str:
        try:
            return self.pages[name]
        except KeyError:
            raise LinksError(f"links.yml: no page named {name!r}") from None

    def landing(self, role: str | None) -> str:
        return self.landing_pages.get(role or "unknown") or self.landing_pages["unknown"]

    def as_context(self) -> dict[str, Any]:
        """What templates see: `link`, `landing`, and the hosts by name."""
        return {"link": self.page, "landing": self.landing, **self.hosts}


def load_links(path: Path) -> Links:
    """Read and resolve links.yml; a missing host, page group or role fails with one line."""
    try:
        raw = yaml.safe_load(path.read_text()) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise LinksError(f"cannot read {path}: {exc}") from exc
    missing = [h for h in HOSTS if not raw.get(h)]
    if missing:
        raise LinksError(f"{path.name}: {missing[0]}: missing (the hosts are {', '.join(HOSTS)})")
    hosts = {h: str(raw[h]).rstrip("/") for h in HOSTS}

    def resolve(group: str) -> dict[str, str]:
        values = raw.get(group) or {}
        if not isinstance(values, dict):
            raise LinksError(f"{path.name}: {group}: must be a mapping of name: address")
        try:
            return {str(k): str(v).format(**hosts) for k, v in values.items()}
        except KeyError as exc:
            raise LinksError(f"{path.name}: {group}: unknown placeholder {exc}") from exc

    landing = resolve("landing")
    if "unknown" not in landing:
        raise LinksError(f"{path.name}: landing.unknown: missing (the page for any other role)")
    return Links(hosts=hosts, pages=resolve("pages"), landing_pages=landing)


def with_utm(url: str, campaign: str, step: str) -> str:
    """`url` with the campaign's UTM parameters (kept as they are if the link already has them)."""
    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True)
    if any(k == "utm_source" for k, _ in query):
        return url
    query += [
        ("utm_source", "onramp"),
        ("utm_medium", "email"),
        ("utm_campaign", campaign),
        ("utm_content", f"step-{step}"),
    ]
    return urlunsplit(parts._replace(query=urlencode(query)))


def tag_html(html: str, campaign: str, step: str) -> str:
    """UTM parameters on every http(s) href (HTML-escaped `&` as the attribute needs)."""

    def one(match: re.Match[str]) -> str:
        url = match.group(2).replace("&amp;", "&")
        return match.group(1) + with_utm(url, campaign, step).replace("&", "&amp;") + match.group(3)

    return _HREF.sub(one, html)


def tag_text(text: str, campaign: str, step: str) -> str:
    """UTM parameters on every bare http(s) address of a plain-text part."""
    return _BARE.sub(lambda m: with_utm(m.group(0), campaign, step), text)
