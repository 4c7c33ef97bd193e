"""`onramp sync` and `onramp preview`: thin click fronts over email_sync.sync (Dagster calls the
same functions)."""

from __future__ import annotations

import sys
from datetime import date
from pathlib import Path

import click
import sqlalchemy as sa

from email_sync.hashing import hash_key
from email_sync.membership import require_segment_table
from email_sync.render import Renderer
from email_sync.specs import SegmentSpec, load_segment_specs
from email_sync.sync import SyncResult, sync_all
from onramp.as_of import AS_OF, parse_as_of, yesterday_utc
from onramp.errors import OnrampError
from onramp.settings import Settings

COLUMNS = ("segment", "members", "entered", "exited", "sent", "suppressed", "failed", "capped")


def default_as_of() -> date:
    """Yesterday in UTC: the last complete day of data (onramp.as_of, as for build and Dagster)."""
    return yesterday_utc()


def find_manifest() -> Path:
    """The dbt manifest: onramp.dbt.manifest_path() when that module exists (it parses the project
    if needed), else target/manifest.json. load_segment_specs says so if it is missing."""
    try:
        from onramp.dbt import manifest_path
    except ImportError:
        return Path("target") / "manifest.json"
    return Path(manifest_path())


def select_specs(specs: list[SegmentSpec], names: tuple[str, ...]) -> list[SegmentSpec]:
    """The specs the user named (`name` or `seg_name`), in their order; all when none named."""
    if not names:
        return specs
    by_name = {s.name: s for s in specs}
    for alias in list(by_name):
        by_name.setdefault(f"seg_{alias}", by_name[alias])
    unknown = [n for n in names if n not in by_name]
    if unknown:
        known = ", ".join(sorted(s.name for s in specs)) or "none"
        raise OnrampError(f"unknown segment {unknown[0]!r} (segments with sync meta: {known})")
    return [by_name[n] for n in dict.fromkeys(names)]


def format_table(results: list[SyncResult]) -> str:
    """One row per segment sync, as `onramp sync` prints it."""
    rows = [COLUMNS] + [tuple(str(v) for v in r.as_row().values()) for r in results]
    widths = [max(len(row[i]) for row in rows) for i in range(len(COLUMNS))]
    lines = []
    for n, row in enumerate(rows):
        cells = [
            row[i].ljust(widths[i]) if i == 0 else row[i].rjust(widths[i]) for i in range(len(row))
        ]
        lines.append("  ".join(cells).rstrip())
        if n == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


def _parse_date(value: date | None) -> date:
    return parse_as_of(value)


@click.command()
@click.option("--segment", "segments", multiple=True, help="Only this segment (repeatable).")
@click.option(
    "--dry-run", is_flag=True, help="Compute and print everything; write and send nothing."
)
@click.option(
    "--allow-large", is_flag=True, help="Let a change larger than the blast radius through."
)
@click.option(
    "--as-of",
    type=AS_OF,
    help="As-of day, the Dagster partition key (default: yesterday UTC).",
)
@click.option("--wait", is_flag=True, help="Wait for a running sync of the same segment to finish.")
def sync(
    segments: tuple[str, ...],
    dry_run: bool,
    allow_large: bool,
    as_of: date | None,
    wait: bool,
) -> None:
    """Push segment changes to the email provider: list membership and triggered emails."""
    from onramp.warehouse import get_engine

    settings = Settings.from_env()
    specs = select_specs(load_segment_specs(find_manifest()), segments)
    if not specs:
        click.echo("no segment asks for syncing (config.meta.onramp with list or email)")
        return
    engine = get_engine(settings)
    day = _parse_date(as_of)
    outcomes = sync_all(engine, settings, specs, day, dry_run, allow_large, wait=wait)
    results = [o for o in outcomes if isinstance(o, SyncResult)]
    errors = [o for o in outcomes if not isinstance(o, SyncResult)]
    header = f"as of {day.isoformat()}, provider {settings.email_provider}"
    if dry_run:
        header += " (dry run: nothing written, nothing sent)"
    click.echo(header)
    if results:
        click.echo(format_table(results))
    for r in results:
        extra = []
        if r.skipped:
            extra.append(f"{r.skipped} skipped")
        if r.unconfirmed:
            extra.append(f"{r.unconfirmed} sent_unconfirmed")
        if r.gave_up:
            extra.append(
                f"{r.gave_up} failed for good (invalid address or "
                f"{settings.max_send_attempts} attempts), not retried"
            )
        if r.list_added or r.list_removed or r.list_skipped or r.list_pending:
            extra.append(
                f"list +{r.list_added} -{r.list_removed}"
                + (f", {r.list_skipped} without consent" if r.list_skipped else "")
                + (f", {r.list_pending} pending" if r.list_pending else "")
            )
        extra.extend(r.notes)
        if dry_run and r.sample_markdown.startswith("**Subject:** "):
            extra.append("sample subject: " + r.sample_markdown.splitlines()[0][13:])
        if extra:
            click.echo(f"{r.segment}: " + "; ".join(extra))
    for exc in errors:
        click.echo(f"error: {exc}", err=True)
    if errors:
        sys.exit(1)


@click.command()
@click.argument("segment")
@click.option("--limit", default=3, show_default=True, help="How many members to render.")
@click.option("--html", "show_html", is_flag=True, help="Print the HTML part instead of the text.")
def preview(segment: str, limit: int, show_html: bool) -> None:
    """Render a segment's email for a few of its current members (nothing is sent)."""
    from onramp.warehouse import get_engine

    settings = Settings.from_env()
    spec = select_specs(load_segment_specs(find_manifest()), (segment,))[0]
    if spec.email is None:
        raise OnrampError(f"segment {spec.name} has no email (only a list); nothing to preview")
    renderer = Renderer(sender=settings.email_from)
    renderer.check(spec.email.template)
    engine = get_engine(settings)
    with engine.connect() as conn:
        require_segment_table(conn, spec)
        rows = (
            conn.execute(
                sa.text(
                    f"select to_jsonb(s) from {spec.relation} as s order by member_key limit :n"
                ),
                {"n": max(limit, 0)},
            )
            .scalars()
            .all()
        )
    if not rows:
        click.echo(f"segment {spec.name} has no members")
        return
    for n, member in enumerate(rows, 1):
        rendered = renderer.render(
            spec.email.template, dict(member), "preview", spec.name, spec.email.kind
        )
        click.echo(
            f"=== {n}/{len(rows)} member {hash_key(str(member.get('member_key')))} "
            f"template {spec.email.template} ({spec.email.kind})"
        )
        click.echo(f"Subject: {rendered.subject}")
        click.echo("")
        click.echo(rendered.html if show_html else rendered.text)
