"""What a sync needs before it renders: the unsubscribe links of marketing mail, or a refusal.

Called from `email_sync.sync` (renderer set-up) and `email_sync.delivery` (per-email headers), so
those modules keep one line each and the rules live here.
"""

from __future__ import annotations

from email_sync.feedback.links import (
    MARKETING,
    MarketingNotConfigured,
    links_from_settings,
    require_marketing,
)
from email_sync.render import Renderer
from email_sync.specs import SegmentSpec
from onramp.settings import Settings

__all__ = ["MarketingNotConfigured", "prepare_renderer", "unsubscribe_headers"]


def prepare_renderer(
    settings: Settings, spec: SegmentSpec, renderer: Renderer | None = None
) -> Renderer:
    """The run's renderer with unsubscribe links; marketing without them is refused here, before
    anything is decided or sent."""
    renderer = renderer or Renderer(sender=settings.email_from)
    if spec.email is not None and spec.email.kind == MARKETING:
        links = require_marketing(settings)
    else:
        links = links_from_settings(settings)
    if renderer.unsubscribe is None:
        renderer.unsubscribe = links
    return renderer


def unsubscribe_headers(renderer: Renderer, message_id: str, kind: str) -> dict[str, str]:
    """List-Unsubscribe (+ -Post) for marketing mail; nothing for transactional mail."""
    if kind != MARKETING:
        return {}
    if renderer.unsubscribe is not None:
        return renderer.unsubscribe.headers(message_id, kind)
    return {"List-Unsubscribe": f"<{renderer.unsubscribe_url(message_id)}>"}
