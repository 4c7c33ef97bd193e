"""Jinja2 rendering of a segment's email: `<template>.subject.j2`, `.html.j2`, `.txt.j2`.

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
    """Renders a segment's templates for one member."""

    def __init__(self, templates_dir: Path | None = None, sender: str = "onramp@example.com"):
        self.dir = Path(templates_dir or TEMPLATES_DIR)
        self.sender = sender

    @cached_property
    def _html_env(self) -> jinja2.Environment:
        return jinja2.Environment(
            loader=jinja2.FileSystemLoader(self.dir),
            autoescape=True,
            undefined=jinja2.StrictUndefined,
            auto_reload=False,  # one stat() per template per email otherwise
        )

    @cached_property
    def _text_env(self) -> jinja2.Environment:
        return jinja2.Environment(
            loader=jinja2.FileSystemLoader(self.dir),
            autoescape=False,
            undefined=jinja2.StrictUndefined,
            auto_reload=False,
        )

    def check(self, template: str) -> None:
        """Raise TemplateMissing unless all three parts exist."""
        for part in ("subject", "html", "txt"):
            if not (self.dir / f"{template}.{part}.j2").exists():
                raise TemplateMissing(f"template {template}.{part}.j2 not found in {self.dir}")

    def unsubscribe_url(self, message_id: str) -> str:
        return f"mailto:{self.sender}?subject={quote('unsubscribe ' + message_id)}"

    def context(
        self, member: dict[str, Any], message_id: str, segment: str, kind: str = "marketing"
    ) -> dict[str, Any]:
        ctx = dict(member)
        ctx["kind"] = kind
        name = (member.get("name") or "").strip()
        ctx.setdefault("first_name", name.split()[0] if name else "there")
        ctx["member"] = member
        ctx["segment"] = segment
        ctx["message_id"] = message_id
        ctx["unsubscribe_url"] = self.unsubscribe_url(message_id)
        return ctx

    def render(
        self,
        template: str,
        member: dict[str, Any],
        message_id: str = "preview",
        segment: str = "",
        kind: str = "marketing",
    ) -> Rendered:
        ctx = self.context(member, message_id, segment, kind)
        subject = self._text_env.get_template(f"{template}.subject.j2").render(ctx)
        html = self._html_env.get_template(f"{template}.html.j2").render(ctx)
        text = self._text_env.get_template(f"{template}.txt.j2").render(ctx)
        return Rendered(" ".join(subject.split()), html, text.strip() + "\n")
