"""SendGrid unsubscribe groups (ASM): one group per unsubscribe scope, found or created by name.

Marketing sends carry `asm.group_id`, so SendGrid's own unsubscribe footer and preference centre
work and its group unsubscribes come back to us (Event Webhook `group_unsubscribe`, suppression
pull). The group is looked up by name once per provider object and created when missing.
"""

from __future__ import annotations

import logging
from typing import Any

log = logging.getLogger(__name__)
GROUP_PREFIX = "onramp "


def group_name(scope: str) -> str:
    """The SendGrid unsubscribe group name for a scope ('marketing' -> 'onramp marketing')."""
    return f"{GROUP_PREFIX}{scope}"


def scope_of_group(name: str | None) -> str | None:
    """The scope an onramp group stands for ('onramp marketing' -> 'marketing')."""
    if name and name.startswith(GROUP_PREFIX):
        return name[len(GROUP_PREFIX) :]
    return None


def asm_group_id(provider: Any, scope: str) -> int:
    """The id of the group for `scope` on this SendGrid account, creating it when missing."""
    cache: dict[str, int] = provider.__dict__.setdefault("_asm_group_ids", {})
    if scope in cache:
        return cache[scope]
    name = group_name(scope)
    sg = provider.sg.client
    groups = provider._json(
        provider._call("asm/groups", lambda: sg.asm.groups.get(timeout=provider.timeout_s))
    )
    for group in groups or []:
        if group.get("name") == name:
            cache[scope] = int(group["id"])
            return cache[scope]
    body = {"name": name, "description": f"{scope.capitalize()} email from onramp"}
    created = provider._json(
        provider._call(
            "create asm group",
            lambda: sg.asm.groups.post(request_body=body, timeout=provider.timeout_s),
        )
    )
    cache[scope] = int(created["id"])
    log.info("created SendGrid unsubscribe group %r", name)
    return cache[scope]
