"""`onramp sync` and `onramp preview`: thin click fronts over email_sync.sync (Dagster calls the
same functions)."""

from __future__ import annotations

import sys
from datetime import date
from pathlib import Path

import click
import sqlalchemy as sa

from email_sync.hashing import hash_key
from email_sync.render import Renderer
from email_sync.specs import SegmentSpec, load_segment_specs
from email_sync.sync import SyncResult, sync_all
from onramp.as_of import AS_OF, parse_as_of
from onramp.errors import OnrampError
from onramp.freshness import max_event_lag_hours, warehouse_events_freshness
from onramp.settings import Settings

COLUMNS = ("segment", "members", "entered", "exited", "sent", "suppressed", "failed", "capped")


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


def held_back(
    engine: sa.Engine, settings: Settings, specs: list[SegmentSpec], day: date
) -> dict[str, str]:
    """Segments with requires_fresh_events while raw events are stale -> why (the Dagster sync
    holds the same ones back): not synced at all, so the next sync on fresh data decides. With
    the Spark warehouse the raw events are on Spark, so that is where freshness is read."""
    gated = [s for s in specs if s.requires_fresh_events]
    if not gated:
        return {}
    freshness = warehouse_events_freshness(engine, day, max_event_lag_hours(), settings)
    if freshness.fresh:
        return {}
    return {s.name: freshness.describe() for s in gated}


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
@click.option(
    "--initial",
    type=click.Choice(["record", "send"]),
    default="record",
    show_default=True,
    help="First sync of a segment larger than the blast-radius minimum: record its members "
    "without emailing them, or email them all.",
)
def sync(
    segments: tuple[str, ...],
    dry_run: bool,
    allow_large: bool,
    as_of: date | None,
    wait: bool,
    initial: str,
) -> None:
    """Push segment changes to the email provider: list membership and triggered emails."""
    from onramp.warehouse import get_engine

    settings = Settings.from_env()
    specs = select_specs(load_segment_specs(find_manifest()), segments)
    if not specs:
        click.echo("no segment asks for syncing (config.meta.onramp with list, email or notify)")
        return
    engine = get_engine(settings)
    day = parse_as_of(as_of)
    not_copied: dict[str, str] = {}
    if settings.warehouse == "spark":
        # the segments live on Spark; the sync's SQL reads copies in the state database
        from email_sync.spark_mirror import mirror_for_sync

        mirrored = mirror_for_sync(engine, settings, specs, wait=wait)
        click.echo(mirrored.describe())
        not_copied = mirrored.unusable(specs)
    held = held_back(engine, settings, [s for s in specs if s.name not in not_copied], day)
    outcomes = sync_all(
        engine,
        settings,
        [s for s in specs if s.name not in held and s.name not in not_copied],
        day,
        dry_run,
        allow_large,
        wait=wait,
        initial=initial,
    )
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
        if r.notified or r.notify_failed:
            extra.append(f"team notification posted {r.notified}, failed {r.notify_failed}")
        if extra:
            click.echo(f"{r.segment}: " + "; ".join(extra))
        for text in r.notifications:
            click.echo(text)
    for name, why in held.items():
        click.echo(f"{name}: sends held back, {why}; nothing recorded, the next sync sends")
    for name, why in not_copied.items():
        click.echo(f"error: {name} not synced: {why}", err=True)
    for exc in errors:
        click.echo(f"error: {exc}", err=True)
    if errors or not_copied:
        sys.exit(1)


@click.command()
@click.argument("campaign")
@click.option("--step", default=1, show_default=True, help="Which step of the campaign (1-based).")
@click.option("--developer", default=None, help="Render for this developer (default: the first).")
@click.option(
    "--html",
    "html_file",
    type=click.Path(dir_okay=False, writable=True, path_type=Path),
    default=None,
    help="Also write the HTML part to this file (open it in a browser).",
)
def preview(campaign: str, step: int, developer: str | None, html_file: Path | None) -> None:
    """Render a campaign's email for a real member (or a sample one); nothing is sent."""
    from email_sync.preview import find_member, render_step
    from onramp.warehouse import get_engine

    settings = Settings.from_env()
    spec = select_specs(load_segment_specs(find_manifest()), (campaign,))[0]
    if spec.sequence is None:
        raise OnrampError(f"segment {spec.name} has no email (only a list); nothing to preview")
    renderer = Renderer(sender=settings.email_from)
    if settings.warehouse == "spark":
        from email_sync.preview import find_member_on_spark
        from onramp.spark import spark_session

        member, source = find_member_on_spark(spark_session(settings), spec, developer)
    else:
        with get_engine(settings).connect() as conn:
            member, source = find_member(conn, spec, developer)
    rendered = render_step(renderer, spec, step, member)
    seq_step = spec.sequence.step(step)
    click.echo(
        f"=== {spec.name} step {step}/{len(spec.sequence.steps)} ({seq_step.kind}, "
        f"day {seq_step.after_days}) template {seq_step.template} ({spec.sequence.category}) "
        f"for {source} {hash_key(str(member.get('member_key')))}"
    )
    click.echo(f"Subject: {rendered.subject}")
    click.echo("")
    click.echo(rendered.text)
    if html_file is not None:
        html_file.write_text(rendered.html)
        click.echo(f"HTML written to {html_file}")
