"""Which segments to sync and how, read from the dbt manifest (`config.meta.onramp` of seg_ models).

The manifest is the single place a segment says how it is synced, so adding a segment is one SQL
file plus its YAML block and no Python change (docs/conventions.md).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from email_sync.notify.spec import NotifySpec, notify_from_meta
from onramp.errors import OnrampError

_NAME = re.compile(r"^[a-z_][a-z0-9_]*$")
KINDS = ("marketing", "transactional")


class SpecError(OnrampError):
    """The manifest is missing or a segment's meta cannot be used."""


@dataclass(frozen=True)
class EmailSpec:
    """The triggered email a member gets when entering the segment."""

    template: str
    kind: str = "marketing"
    priority: int = 50
    bypass_frequency_cap: bool = False


@dataclass(frozen=True)
class SegmentSpec:
    """One segment table and what to do with its changes."""

    name: str
    schema: str = "segments"
    table: str = ""
    list_name: str | None = None
    custom_fields: tuple[str, ...] = ()
    email: EmailSpec | None = None
    reentry: bool = True
    requires_fresh_events: bool = False
    notify: NotifySpec | None = None
    meta: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    @property
    def relation(self) -> str:
        """Quoted `schema.table`; both parts are validated identifiers."""
        return f'"{self.schema}"."{self.table or "seg_" + self.name}"'

    @property
    def priority(self) -> int:
        return self.email.priority if self.email else 0

    @property
    def syncs_anything(self) -> bool:
        return self.email is not None or self.list_name is not None or self.notify is not None


def _bool(value: Any, what: str) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in {"true", "false"}:
        return value.lower() == "true"
    raise SpecError(f"{what} must be true or false, got {value!r}")


def spec_from_meta(
    name: str, meta: dict[str, Any], schema: str = "segments", table: str = ""
) -> SegmentSpec:
    """Build a spec from one model's `onramp` meta block, with one-line errors for bad values."""
    where = f"segment {name}"
    if not _NAME.match(name) or not _NAME.match(schema) or (table and not _NAME.match(table)):
        raise SpecError(f"{where}: schema/table names must be lowercase identifiers")
    if not isinstance(meta, dict):
        raise SpecError(f"{where}: meta.onramp must be a mapping")
    email = None
    raw_email = meta.get("email")
    if raw_email:
        if isinstance(raw_email, str):
            raw_email = {"template": raw_email}
        template = raw_email.get("template")
        if not template or not _NAME.match(str(template)):
            raise SpecError(f"{where}: email.template must be a template name like 'welcome'")
        kind = str(raw_email.get("kind", "marketing"))
        if kind not in KINDS:
            raise SpecError(f"{where}: email.kind must be marketing or transactional, got {kind!r}")
        try:
            priority = int(raw_email.get("priority", 50))
        except (TypeError, ValueError) as exc:
            raise SpecError(f"{where}: email.priority must be an integer") from exc
        email = EmailSpec(
            template=str(template),
            kind=kind,
            priority=priority,
            bypass_frequency_cap=_bool(
                raw_email.get("bypass_frequency_cap", False), f"{where}: bypass_frequency_cap"
            ),
        )
    custom_fields = meta.get("custom_fields") or []
    if isinstance(custom_fields, str):
        custom_fields = [custom_fields]
    for column in custom_fields:
        if not _NAME.match(str(column)):
            raise SpecError(f"{where}: custom_fields must be column names, got {column!r}")
    list_name = meta.get("list")
    return SegmentSpec(
        name=name,
        schema=schema,
        table=table or f"seg_{name}",
        list_name=str(list_name) if list_name else None,
        custom_fields=tuple(str(c) for c in custom_fields),
        email=email,
        reentry=_bool(meta.get("reentry", True), f"{where}: reentry"),
        requires_fresh_events=_bool(
            meta.get("requires_fresh_events", False), f"{where}: requires_fresh_events"
        ),
        notify=notify_from_meta(name, meta.get("notify")),
        meta=dict(meta),
    )


def load_segment_specs(manifest_path: Path | str) -> list[SegmentSpec]:
    """Every seg_ model whose `config.meta.onramp` asks for a list or an email, by name.

    Models are found by the `seg_` prefix; their schema and alias come from the manifest so a
    project that renames schemas still works.
    """
    path = Path(manifest_path)
    if not path.exists():
        raise SpecError(f"dbt manifest not found at {path}: run `onramp build` first")
    try:
        manifest = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise SpecError(f"cannot read dbt manifest {path}: {exc}") from exc
    specs: list[SegmentSpec] = []
    for node in (manifest.get("nodes") or {}).values():
        if node.get("resource_type") != "model":
            continue
        model = str(node.get("name", ""))
        if not model.startswith("seg_"):
            continue
        config = node.get("config") or {}
        meta = (config.get("meta") or {}).get("onramp") or (node.get("meta") or {}).get("onramp")
        if not meta:
            continue
        spec = spec_from_meta(
            model[len("seg_") :],
            meta,
            schema=str(node.get("schema") or "segments"),
            table=str(node.get("alias") or model),
        )
        if spec.syncs_anything:
            specs.append(spec)
    return sorted(specs, key=lambda s: (-s.priority, s.name))
