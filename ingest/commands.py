"""`onramp load`: load raw files into the warehouse, with a progress bar and a summary table."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from ingest.loader import FORMATS, BatchResult, LoadError, load_paths, normalise_kind

PROGRESS_MIN_BYTES = 1 << 20  # smaller loads finish before a bar would be useful
ALL_FORMATS = ("auto", "jsonl", "csv", "moesif", "combined")


@click.command("load")
@click.argument("kind", metavar="api-events|developers|incidents|endpoints")
@click.argument("paths", nargs=-1, metavar="PATH...")
@click.option(
    "--format",
    "fmt",
    default="auto",
    show_default=True,
    metavar="auto|jsonl|csv|moesif|combined",
    help="File format; auto looks at the extension (under .gz) and the first lines.",
)
@click.option(
    "--caller",
    default=None,
    metavar="remote-user|ip|query:PARAM|header:NAME",
    help="Access logs: where the calling developer_id comes from "
    "(default: remote user, else the api_key query parameter, else the client IP).",
)
def load(kind: str, paths: tuple[str, ...], fmt: str, caller: str | None) -> None:
    """Load raw files into raw.* (one atomic, idempotent batch per file).

    Bad rows never stop a load: they go to raw.load_rejects with their line number and reason,
    and are counted in the summary. A file loaded before (same bytes) is skipped. A file that
    cannot be loaded at all is recorded as a failed batch, the others still load, and the command
    then exits with one error line naming it.
    """
    from ingest.schema import ensure_raw_schema
    from onramp.settings import Settings
    from onramp.warehouse import get_engine

    table_kind = normalise_kind(kind)
    if fmt.strip().lower() not in ALL_FORMATS:
        raise LoadError(f"unknown format {fmt!r}: use {', '.join(ALL_FORMATS)}")
    if fmt != "auto" and fmt not in FORMATS[table_kind]:
        allowed = ", ".join(FORMATS[table_kind])
        raise LoadError(f"format {fmt!r} does not apply to {kind}: use auto, {allowed}")
    if not paths:
        raise LoadError("give at least one PATH to load")
    files = [Path(p) for p in paths]
    for path in files:
        if not path.exists():
            raise LoadError(f"no such file: {path}")
        if not path.is_file():
            raise LoadError(f"not a file: {path}")
    if Settings.from_env().warehouse == "spark":
        _load_spark(table_kind, files, fmt, caller)
        return
    engine = get_engine()
    ensure_raw_schema(engine)
    total = sum(path.stat().st_size for path in files)
    if total >= PROGRESS_MIN_BYTES:
        with click.progressbar(
            length=total, label=f"loading {kind}", file=sys.stderr, show_eta=True
        ) as bar:
            results = load_paths(engine, table_kind, files, fmt, caller, progress=bar.update)
    else:
        results = load_paths(engine, table_kind, files, fmt, caller)
    line = None
    if table_kind in ("api_events", "developers"):
        from onramp.callers import callers_line, callers_without_record

        line = callers_line(callers_without_record(engine))
    _report(results, line)


def _load_spark(kind: str, files: list[Path], fmt: str, caller: str | None) -> None:
    """The same load into the Spark warehouse (ingest.spark.load), the same summary and errors."""
    from ingest.spark.load import load_paths_spark
    from onramp.spark import spark_session

    results = load_paths_spark(spark_session(), kind, files, fmt, caller)
    _report(results)


def _report(results: list[BatchResult], line: str | None = None) -> None:
    """The summary table, an optional line after it, notes, and one error for failed files."""
    click.echo(format_summary(results))
    if line:
        click.echo(line)
    for r in results:
        for note in r.notes:
            click.echo(f"note: {r.path}: {note}", err=True)
    failed = [r for r in results if r.failed]
    if failed:
        raise LoadError(
            f"{len(failed)} of {len(results)} files could not be loaded"
            f" (recorded as failed in raw.load_batches): "
            + "; ".join(f"{r.path}: {r.error}" for r in failed)
        )


def format_summary(results: list[BatchResult]) -> str:
    """One table: a line per file plus a total, as the user reads it after a load."""
    header = ("file", "format", "loaded", "duplicates", "rejects", "seconds", "")
    rows: list[tuple[str, ...]] = []
    for r in results:
        rows.append(
            (
                r.path,
                r.format,
                f"{r.rows_loaded:,}",
                f"{r.rows_duplicate:,}",
                f"{r.rows_rejected:,}",
                f"{r.seconds:.2f}",
                "failed" if r.failed else "skipped: loaded before" if r.skipped else "",
            )
        )
    if len(results) > 1:
        rows.append(
            (
                "total",
                "",
                f"{sum(r.rows_loaded for r in results):,}",
                f"{sum(r.rows_duplicate for r in results):,}",
                f"{sum(r.rows_rejected for r in results):,}",
                f"{sum(r.seconds for r in results):.2f}",
                "",
            )
        )
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    numeric = {2, 3, 4, 5}

    def fmt_row(row: tuple[str, ...]) -> str:
        cells = [
            cell.rjust(widths[i]) if i in numeric else cell.ljust(widths[i])
            for i, cell in enumerate(row)
        ]
        return "  ".join(cells).rstrip()

    lines = [fmt_row(header), "  ".join("-" * w for w in widths[:-1])]
    lines += [fmt_row(row) for row in rows]
    return "\n".join(lines)
