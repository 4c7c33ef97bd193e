"""Which segments to sync and how, read from the dbt manifest (`config.meta.onramp` of seg_ models).

The manifest is the single place a segment says how it is synced, so adding a segment or a
campaign is one SQL file, its YAML block and its templates, and no Python change
(docs/conventions.md).

A campaign is a `sequence` block (ordered steps, a goal, a re-entry rule, a category, a priority
and a holdout share). The older one-email-on-entry form (`email: {template, kind, ...}`) still
works: it becomes a one-step sequence. Every declaration is checked here, when the manifest is
read, so a typo fails before anything is decided, with one line naming the segment and the key.
A `notify` block (email_sync.notify) tells the team about the segment's changes.
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
KINDS = ("marketing", "transactional")  # a sequence's category
STEP_KINDS = ("content", "ask")
DEFAULT_HOLDOUT = {"marketing": 0.10, "transactional": 0.0}
DEFAULT_CONTENT_PER_ASK = 3

SEQUENCE_KEYS = {
    "category",
    "priority",
    "holdout_share",
    "goal",
    "reentry_after_days",
    "content_per_ask",
    "bypass_frequency_cap",
    "steps",
}
STEP_KEYS = {"template", "after_days", "kind"}
EMAIL_KEYS = {"template", "kind", "priority", "bypass_frequency_cap", "holdout_share"}


class SpecError(OnrampError):
    """The manifest is missing or a segment's meta cannot be used."""


@dataclass(frozen=True)
class Step:
    """One email of a sequence: sent `after_days` after the member entered the segment."""

    number: int  # 1-based; the ledger's `step` is this number as text
    template: str
    after_days: int = 0
    kind: str = "content"  # content | ask (the 3:1 cadence is checked on these)


@dataclass(frozen=True)
class Sequence:
    """A campaign: ordered steps for the members of one segment, until they leave or reach the
    goal. `reentry_after_days` None means a member gets the sequence once, ever."""

    steps: tuple[Step, ...]
    category: str = "marketing"
    priority: int = 50
    holdout_share: float = 0.10
    goal_leaves_segment: bool = True
    goal_segment: str | None = None  # `enters: <segment>`: reached when the developer is in it
    goal_relation: str | None = None  # filled from the manifest
    reentry_after_days: int | None = 0
    content_per_ask: int = DEFAULT_CONTENT_PER_ASK
    bypass_frequency_cap: bool = False

    # The names the one-email form used; delivery and the Dagster description read them.
    @property
    def kind(self) -> str:
        return self.category

    @property
    def template(self) -> str:
        return self.steps[0].template

    @property
    def templates(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(s.template for s in self.steps))

    def step(self, number: int) -> Step:
        return self.steps[number - 1]


# The one-email form is a one-step sequence; the name stays for readers of older code.


@dataclass(frozen=True)
class SegmentSpec:
    """One segment table and what to do with its changes."""

    name: str
    schema: str = "segments"
    table: str = ""
    list_name: str | None = None
    custom_fields: tuple[str, ...] = ()
    sequence: Sequence | None = None
    requires_fresh_events: bool = False
    notify: NotifySpec | None = None
    meta: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    @property
    def relation(self) -> str:
        """Quoted `schema.table`; both parts are validated identifiers."""
        return f'"{self.schema}"."{self.table or "seg_" + self.name}"'

    @property
    def email(self) -> Sequence | None:
        """The campaign, under the name the one-email form used."""
        return self.sequence

    @property
    def reentry(self) -> bool:
        return self.sequence is None or self.sequence.reentry_after_days is not None

    @property
    def priority(self) -> int:
        return self.sequence.priority if self.sequence else 0

    @property
    def syncs_anything(self) -> bool:
        return self.sequence is not None or self.list_name is not None or self.notify is not None


def _bool(value: Any, what: str) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in {"true", "false"}:
        return value.lower() == "true"
    raise SpecError(f"{what} must be true or false, got {value!r}")


def _int(value: Any, what: str, minimum: int = 0) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise SpecError(f"{what} must be an integer, got {value!r}")
    try:
        number = int(value)
    except ValueError as exc:
        raise SpecError(f"{what} must be an integer, got {value!r}") from exc
    if number < minimum:
        raise SpecError(f"{what} must be at least {minimum}, got {number}")
    return number


def _share(value: Any, what: str) -> float:
    try:
        share = float(value)
    except (TypeError, ValueError) as exc:
        raise SpecError(f"{what} must be a number from 0 to 1, got {value!r}") from exc
    if not 0 <= share < 1:
        raise SpecError(f"{what} must be from 0 up to (not including) 1, got {value!r}")
    return share


def _unknown(raw: dict[str, Any], allowed: set[str], where: str) -> None:
    extra = sorted(set(raw) - allowed)
    if extra:
        raise SpecError(f"{where}.{extra[0]}: unknown key (expected one of {sorted(allowed)})")


def _template(value: Any, where: str) -> str:
    if not value or not _NAME.match(str(value)):
        raise SpecError(f"{where}: must be a template name like 'welcome', got {value!r}")
    return str(value)


def _reentry(value: Any, where: str) -> int | None:
    """`never`, or a number of days out of the segment before a re-entry starts again."""
    if isinstance(value, str) and value.strip().lower() == "never":
        return None
    return _int(value, where)


def _goal(raw: Any, where: str) -> tuple[bool, str | None]:
    """Exactly two shapes: `{leaves_segment: true}` or `{enters: <segment name>}`."""
    if not isinstance(raw, dict) or len(raw) != 1:
        raise SpecError(f"{where}: must be {{leaves_segment: true}} or {{enters: <segment>}}")
    ((key, value),) = raw.items()
    if key == "leaves_segment":
        if _bool(value, f"{where}.leaves_segment") is not True:
            raise SpecError(f"{where}.leaves_segment: must be true")
        return True, None
    if key == "enters":
        name = str(value).removeprefix("seg_")
        if not _NAME.match(name):
            raise SpecError(f"{where}.enters: must be a segment name, got {value!r}")
        return False, name
    raise SpecError(f"{where}.{key}: unknown key (expected leaves_segment or enters)")


def _check_cadence(steps: tuple[Step, ...], content_per_ask: int, where: str) -> None:
    """Every ask follows at least `content_per_ask` content steps since the previous ask."""
    content = 0
    for step in steps:
        if step.kind == "content":
            content += 1
            continue
        if content < content_per_ask:
            raise SpecError(
                f"{where}.steps[{step.number}].kind: an ask after {content} content step(s); "
                f"content_per_ask is {content_per_ask}"
            )
        content = 0


def _sequence(raw: Any, where: str, reentry_default: int | None) -> Sequence:
    if not isinstance(raw, dict):
        raise SpecError(f"{where}: must be a mapping")
    _unknown(raw, SEQUENCE_KEYS, where)
    category = str(raw.get("category", "marketing"))
    if category not in KINDS:
        raise SpecError(f"{where}.category: must be marketing or transactional, got {category!r}")
    raw_steps = raw.get("steps")
    if not isinstance(raw_steps, list) or not raw_steps:
        raise SpecError(f"{where}.steps: must be a non-empty list of steps")
    steps: list[Step] = []
    previous_after = 0
    for number, raw_step in enumerate(raw_steps, start=1):
        at = f"{where}.steps[{number}]"
        if not isinstance(raw_step, dict):
            raise SpecError(f"{at}: must be a mapping with template, after_days and kind")
        _unknown(raw_step, STEP_KEYS, at)
        kind = str(raw_step.get("kind", "content"))
        if kind not in STEP_KINDS:
            raise SpecError(f"{at}.kind: must be content or ask, got {kind!r}")
        after_days = _int(raw_step.get("after_days", 0), f"{at}.after_days")
        if after_days < previous_after:
            raise SpecError(f"{at}.after_days: steps must not go back in time ({after_days})")
        previous_after = after_days
        steps.append(Step(number, _template(raw_step.get("template"), f"{at}.template"),
                          after_days, kind))  # fmt: skip
    content_per_ask = _int(
        raw.get("content_per_ask", DEFAULT_CONTENT_PER_ASK), f"{where}.content_per_ask"
    )
    _check_cadence(tuple(steps), content_per_ask, where)
    leaves, goal_segment = _goal(raw.get("goal", {"leaves_segment": True}), f"{where}.goal")
    return Sequence(
        steps=tuple(steps),
        category=category,
        priority=_int(raw.get("priority", 50), f"{where}.priority", minimum=-1000),
        holdout_share=_share(
            raw.get("holdout_share", DEFAULT_HOLDOUT[category]), f"{where}.holdout_share"
        ),
        goal_leaves_segment=leaves,
        goal_segment=goal_segment,
        reentry_after_days=_reentry(
            raw.get("reentry_after_days", "never" if reentry_default is None else reentry_default),
            f"{where}.reentry_after_days",
        ),
        content_per_ask=content_per_ask,
        bypass_frequency_cap=_bool(
            raw.get("bypass_frequency_cap", False), f"{where}.bypass_frequency_cap"
        ),
    )


def _one_email(raw: Any, where: str, reentry: int | None) -> Sequence:
    """The one-email-on-entry form as a one-step sequence (no holdout unless it asks for one,
    so existing alerts keep reaching everyone)."""
    if isinstance(raw, str):
        raw = {"template": raw}
    if not isinstance(raw, dict):
        raise SpecError(f"{where}: must be a template name or a mapping")
    _unknown(raw, EMAIL_KEYS, where)
    kind = str(raw.get("kind", "marketing"))
    if kind not in KINDS:
        raise SpecError(f"{where}.kind: must be marketing or transactional, got {kind!r}")
    return Sequence(
        steps=(Step(1, _template(raw.get("template"), f"{where}.template")),),
        category=kind,
        priority=_int(raw.get("priority", 50), f"{where}.priority", minimum=-1000),
        holdout_share=_share(raw.get("holdout_share", 0), f"{where}.holdout_share"),
        reentry_after_days=reentry,
        bypass_frequency_cap=_bool(
            raw.get("bypass_frequency_cap", False), f"{where}.bypass_frequency_cap"
        ),
    )


def spec_from_meta(
    name: str, meta: dict[str, Any], schema: str = "segments", table: str = ""
) -> SegmentSpec:
    """Build a spec from one model's `onramp` meta block, with one-line errors for bad values."""
    where = f"segment {name}"
    if not _NAME.match(name) or not _NAME.match(schema) or (table and not _NAME.match(table)):
        raise SpecError(f"{where}: schema/table names must be lowercase identifiers")
    if not isinstance(meta, dict):
        raise SpecError(f"{where}: meta.onramp must be a mapping")
    # `reentry: true/false` is the one-email form's rule: again on every re-entry, or never.
    reentry = 0 if _bool(meta.get("reentry", True), f"{where}: reentry") else None
    if meta.get("sequence") and meta.get("email"):
        raise SpecError(f"{where}: sequence: declare either `sequence` or `email`, not both")
    sequence = None
    if meta.get("sequence"):
        sequence = _sequence(meta["sequence"], f"{where}: sequence", reentry)
    elif meta.get("email"):
        sequence = _one_email(meta["email"], f"{where}: email", reentry)
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
        sequence=sequence,
        requires_fresh_events=_bool(
            meta.get("requires_fresh_events", False), f"{where}: requires_fresh_events"
        ),
        notify=notify_from_meta(name, meta.get("notify")),
        meta=dict(meta),
    )


def resolve_goals(specs: list[SegmentSpec], relations: dict[str, str]) -> list[SegmentSpec]:
    """Fill each `enters` goal's table from the segments the manifest knows (any seg_ model,
    synced or not); an unknown name fails with one line."""
    from dataclasses import replace

    out = []
    for spec in specs:
        seq = spec.sequence
        if seq and seq.goal_segment:
            relation = relations.get(seq.goal_segment)
            if relation is None:
                raise SpecError(
                    f"segment {spec.name}: sequence.goal.enters: no segment named "
                    f"{seq.goal_segment!r} (known: {', '.join(sorted(relations))})"
                )
            spec = replace(spec, sequence=replace(seq, goal_relation=relation))
        out.append(spec)
    return out


def check_templates(specs: list[SegmentSpec], templates_dir: Path | None = None) -> None:
    """Every step's template exists (subject plus HTML and text, or a shared body)."""
    from email_sync.render import Renderer, TemplateMissing

    renderer = Renderer(templates_dir)
    for spec in specs:
        if not spec.sequence:
            continue
        for step in spec.sequence.steps:
            try:
                renderer.check(step.template)
            except TemplateMissing as exc:
                raise SpecError(
                    f"segment {spec.name}: sequence.steps[{step.number}].template: {exc}"
                ) from exc


def load_segment_specs(
    manifest_path: Path | str, templates_dir: Path | None = None
) -> list[SegmentSpec]:
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
    relations: dict[str, str] = {}
    for node in (manifest.get("nodes") or {}).values():
        if node.get("resource_type") != "model":
            continue
        model = str(node.get("name", ""))
        if not model.startswith("seg_"):
            continue
        schema = str(node.get("schema") or "segments")
        table = str(node.get("alias") or model)
        if _NAME.match(schema) and _NAME.match(table):
            relations[model[len("seg_") :]] = f'"{schema}"."{table}"'
        config = node.get("config") or {}
        meta = (config.get("meta") or {}).get("onramp") or (node.get("meta") or {}).get("onramp")
        if not meta:
            continue
        spec = spec_from_meta(model[len("seg_") :], meta, schema=schema, table=table)
        if spec.syncs_anything:
            specs.append(spec)
    specs = resolve_goals(specs, relations)
    check_templates(specs, templates_dir)
    return sorted(specs, key=lambda s: (-s.priority, s.name))
