"""`onramp generate`: write the sample data set and print what it holds."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import click

from sample_data.generator import generate
from sample_data.reference import MIN_DAYS


def _parse_date(ctx: click.Context, param: click.Parameter, value: str | None) -> date | None:
    if value is None:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise click.BadParameter(f"expected YYYY-MM-DD, got {value!r}") from None


@click.command("generate")
@click.option(
    "--developers",
    default=300,
    show_default=True,
    type=click.IntRange(min=1),
    help="Number of developers.",
)
@click.option(
    "--days",
    default=45,
    show_default=True,
    type=click.IntRange(min=MIN_DAYS),
    help="Days of API traffic, ending with the as-of day.",
)
@click.option("--seed", default=7, show_default=True, type=int, help="Random seed.")
@click.option(
    "--out",
    "out_dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Output directory [default: $ONRAMP_HOME/landing/sample].",
)
@click.option("--as-of", "as_of", callback=_parse_date, default=None, metavar="YYYY-MM-DD",
              help="Last complete day of data [default: yesterday, UTC].")  # fmt: skip
def generate_command(
    developers: int, days: int, seed: int, out_dir: Path | None, as_of: date | None
) -> None:
    """Write deterministic sample data: developers, endpoints, incidents and API events in
    every supported format, plus manifest.json and the expected segment members."""
    if out_dir is None:
        from onramp.settings import Settings

        out_dir = Settings.from_env().landing_dir / "sample"
    manifest_path = generate(out_dir, developers=developers, days=days, seed=seed, as_of=as_of)
    manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    ev = manifest["events"]
    click.echo(
        f"Sample data in {manifest_path.parent} (as of {manifest['as_of']}, "
        f"{ev['first_day']}..{manifest['as_of']}, seed {seed})"
    )
    width = max(len(f["path"]) for f in manifest["files"])
    for f in manifest["files"]:
        click.echo(
            f"  {f['path']:<{width}}  {f['kind']:<10}  {f['format']:<8}  {f['rows']:>9,} rows"
        )
    click.echo(
        f"  {ev['distinct']:,} distinct events ({ev['duplicates']:,} duplicated, "
        f"{ev['out_of_order']:,} out of order, {ev['after_as_of']:,} after as-of)"
    )
    counts = ", ".join(f"{k} {v}" for k, v in manifest["expected_members"].items())
    click.echo(f"  expected segment members: {counts}")
