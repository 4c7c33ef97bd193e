"""Jinja2 rendering of a segment's email: `<template>.subject.j2` plus either `.html.j2` and
`.txt.j2`, or one `.body.j2` that both parts render through the shared layout (`_email.*.j2`,
with the `_blocks.j2` macros switching on `fmt`), so the copy is written once.

Links come from `templates/links.yml` (`links`); every http(s) link of a rendered email gets the
campaign's UTM parameters.

HTML is autoescaped (member columns are data, not markup); subject and text are not, since they are
not HTML. Undefined variables raise, so a template that needs a column the segment lacks fails
loudly for that row (recorded `failed`) instead of sending an email with a hole in it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any
from urllib.parse import quote

import jinja2

from email_sync.feedback.links import UnsubscribeLinks
from email_sync.links import Links, load_links, tag_html, tag_text
from onramp.errors import OnrampError

TEMPLATES_DIR = Path(__file__).resolve().parents[1] / "templates"

# Also enforced in SQL (email_sync.guardrails): rejected before any provider call.
EMAIL_RE = (
    r"^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
    r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)+$"
)
_EMAIL = re.compile(EMAIL_RE)


def valid_email(address: str | None) -> bool:
    """The address matches EMAIL_RE (the rule the SQL guardrail also enforces)."""
    # fullmatch: re's `$` also matches before a trailing newline; PostgreSQL's `~` does not.
    return bool(address) and len(address) <= 254 and bool(_EMAIL.fullmatch(address))


class TemplateMissing(OnrampError):
    """A segment's meta names a template that is not in templates/."""


@dataclass(frozen=True)
class Rendered:
    """One rendered email: subject, HTML and plain-text parts."""

    subject: str
    html: str
    text: str


class Renderer:
    """Renders a campaign's templates for one member."""

    def __init__(
        self,
        templates_dir: Path | None = None,
        sender: str = "onramp@example.com",
        unsubscribe: UnsubscribeLinks | None = None,
    ):
        self.dir = Path(templates_dir or TEMPLATES_DIR)
        self.sender = sender
        # One-click unsubscribe + postal address (email_sync.feedback); landing pages: `links`.
        self.unsubscribe = unsubscribe

    def _env(self, autoescape: bool) -> jinja2.Environment:
        env = jinja2.Environment(
            loader=jinja2.FileSystemLoader(self.dir),
            autoescape=autoescape,
            undefined=jinja2.StrictUndefined,
            auto_reload=False,  # one stat() per template per email otherwise
        )
        env.globals["hosts"] = self.links.hosts  # for imports, which do not see the context
        return env

    @cached_property
    def _html_env(self) -> jinja2.Environment:
        return self._env(autoescape=True)

    @cached_property
    def _text_env(self) -> jinja2.Environment:
        return self._env(autoescape=False)

    @cached_property
    def links(self) -> Links:
        """The templates folder's links.yml, else the shipped one (a folder of extra templates
        need not repeat it)."""
        own = self.dir / "links.yml"
        return load_links(own if own.exists() else TEMPLATES_DIR / "links.yml")

    def _has_body(self, template: str) -> bool:
        # Asked once per template, not once per email (templates are not reloaded either).
        known = self.__dict__.setdefault("_bodies", {})
        if template not in known:
            known[template] = (self.dir / f"{template}.body.j2").exists()
        return known[template]

    def check(self, template: str) -> None:
        """Raise TemplateMissing unless the subject and both parts (or a shared body) exist."""
        parts = ("subject", "body") if self._has_body(template) else ("subject", "html", "txt")
        for part in parts:
            if not (self.dir / f"{template}.{part}.j2").exists():
                raise TemplateMissing(f"template {template}.{part}.j2 not found in {self.dir}")

    def unsubscribe_url(self, message_id: str) -> str:
        if self.unsubscribe is not None:
            return self.unsubscribe.url(message_id)
        return f"mailto:{self.sender}?subject={quote('unsubscribe ' + message_id)}"

    def context(
        self,
        member: dict[str, Any],
        message_id: str,
        segment: str,
        kind: str = "marketing",
        step: str | int = 1,
    ) -> dict[str, Any]:
        ctx = dict(member)
        ctx.update(self.links.as_context())
        ctx["step"] = str(step)
        ctx["kind"] = kind
        name = (member.get("name") or "").strip()
        ctx.setdefault("first_name", name.split()[0] if name else "there")
        ctx["member"] = member
        ctx["segment"] = segment
        ctx["message_id"] = message_id
        ctx["unsubscribe_url"] = self.unsubscribe_url(message_id)
        ctx["postal_address"] = self.unsubscribe.postal_address if self.unsubscribe else ""
        return ctx

    def render(
        self,
        template: str,
        member: dict[str, Any],
        message_id: str = "preview",
        segment: str = "",
        kind: str = "marketing",
        step: str | int = 1,
    ) -> Rendered:
        ctx = self.context(member, message_id, segment, kind, step)
        subject = self._text_env.get_template(f"{template}.subject.j2").render(ctx)
        if self._has_body(template):
            body = f"{template}.body.j2"
            html = self._html_env.get_template("_email.html.j2").render(ctx, body=body, fmt="html")
            text = self._text_env.get_template("_email.txt.j2").render(ctx, body=body, fmt="text")
            text = re.sub(r"\n{3,}", "\n\n", text)
        else:
            html = self._html_env.get_template(f"{template}.html.j2").render(ctx)
            text = self._text_env.get_template(f"{template}.txt.j2").render(ctx)
        campaign = segment or template
        html = tag_html(html, campaign, str(step))
        text = tag_text(text, campaign, str(step))
        return Rendered(" ".join(subject.split()), html, text.strip() + "\n")
