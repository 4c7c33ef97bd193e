"""The README's picture of the report, made from the sample data: `make report-screenshot`.

Builds a throwaway warehouse (embedded PostgreSQL in a temporary ONRAMP_HOME, stopped at the
end), loads the sample data, simulates campaign history on it, builds the models, renders the
report and photographs the HTML page with headless Chromium when the machine has it (else the
chart PNGs are stacked into one image). The sample data has no emails, so the history is made up
from the sample's own stage history: each developer's latest spell in not_integrated and sandbox
is a membership of the stage sequence, half the members are held out (a hash of campaign and
developer), the rest get step 1 on entry. Nothing in the sample reacts to email, so the lift
intervals should cover zero: a picture of an honest null result.

    python -m cli.report_screenshot docs/images/funnel_report.png
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import logging
import os
import shutil
import subprocess
import sys
import tempfile
from datetime import date
from pathlib import Path

import sqlalchemy as sa

log = logging.getLogger(__name__)

AS_OF = date(2026, 11, 26)
SAMPLE = {"developers": 300, "days": 45, "seed": 7}
# the stage sequences as the campaigns declare them, with a holdout large enough to read
CAMPAIGNS = {
    "stage_not_integrated": {"goal": {"leaves_segment": True}, "holdout_share": 0.5},
    "stage_sandbox": {"goal": {"enters": "stage_production"}, "holdout_share": 0.5},
}
WIDTH_PX = 1100
CHROMIUM = ("chromium", "chromium-browser", "google-chrome")


def _held_out(campaign: str, developer_id: str, share: float) -> bool:
    digest = hashlib.sha256(f"{campaign}:{developer_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64 < share


def simulate_campaign_history(engine: sa.Engine, as_of: date) -> int:
    """Membership and ledger rows of the stage sequences from marts.fct_developer_stage_daily."""
    from email_sync.schema import ensure_email_schema

    stage_of = {"stage_not_integrated": "not_integrated", "stage_sandbox": "sandbox",
                "stage_production": "production"}  # fmt: skip
    with engine.begin() as conn:
        spells = conn.execute(
            sa.text(
                "with changes as (select developer_id, stage, stage_date as entered,"
                " lead(stage_date) over (partition by developer_id order by stage_date) as exited"
                " from marts.fct_developer_stage_daily where is_stage_change"
                " and stage_date <= :as_of)"
                " select distinct on (developer_id, stage) developer_id, stage, entered, exited"
                " from changes order by developer_id, stage, entered desc"
            ),
            {"as_of": as_of},
        ).all()
        ensure_email_schema(conn)
        memberships, messages = [], []
        for segment, stage in stage_of.items():
            for spell in (s for s in spells if s.stage == stage):
                memberships.append(
                    {"segment": segment, "member_key": spell.developer_id,
                     "developer_id": spell.developer_id, "entered_as_of": spell.entered,
                     "exited_as_of": spell.exited,
                     "entered_at": f"{spell.entered}T06:00:00+00:00",
                     "exited_at": f"{spell.exited}T06:00:00+00:00" if spell.exited else None}
                )  # fmt: skip
                if segment not in CAMPAIGNS:
                    continue
                share = CAMPAIGNS[segment]["holdout_share"]
                held = _held_out(segment, spell.developer_id, share)
                messages.append(
                    {"message_id": f"{segment}:1:{spell.developer_id}", "segment": segment,
                     "step": "1", "member_key": spell.developer_id, "period": "1",
                     "developer_id": spell.developer_id,
                     "status": "held_out" if held else "sent",
                     "created_at": f"{spell.entered}T06:00:00+00:00",
                     "sent_at": None if held else f"{spell.entered}T06:00:00+00:00"}
                )  # fmt: skip
        conn.execute(
            sa.text(
                "insert into email_sync.segment_membership (segment, member_key, developer_id,"
                " entered_at, exited_at, entered_as_of, exited_as_of) values (:segment,"
                " :member_key, :developer_id, :entered_at, :exited_at, :entered_as_of,"
                " :exited_as_of) on conflict do nothing"
            ),
            memberships,
        )
        conn.execute(
            sa.text(
                "insert into email_sync.messages (message_id, segment, step, member_key, period,"
                " developer_id, status, created_at, sent_at) values (:message_id, :segment,"
                " :step, :member_key, :period, :developer_id, :status, :created_at, :sent_at)"
                " on conflict do nothing"
            ),
            messages,
        )
    return len(messages)


def _chromium() -> str | None:
    for name in CHROMIUM:
        found = shutil.which(name)
        if found:
            return found
    return None


def _trim_bottom(png: bytes) -> bytes:
    """Cut the empty page background below the last section."""
    from PIL import Image, ImageChops

    image = Image.open(io.BytesIO(png)).convert("RGB")
    background = Image.new("RGB", image.size, image.getpixel((0, image.height - 1)))
    box = ImageChops.difference(image, background).getbbox()
    if box:
        image = image.crop((0, 0, image.width, min(image.height, box[3] + 24)))
    out = io.BytesIO()
    image.quantize(colors=256).save(out, format="PNG", optimize=True)
    return out.getvalue()


def photograph(html: Path, out: Path) -> str:
    """A PNG of the page: headless Chromium if present, else the charts stacked."""
    browser = _chromium()
    if browser:
        with tempfile.TemporaryDirectory() as tmp:
            shot = Path(tmp) / "page.png"
            subprocess.run(
                [browser, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                 f"--user-data-dir={tmp}/profile", f"--window-size={WIDTH_PX},5200",
                 f"--screenshot={shot}", html.resolve().as_uri()],
                check=True, capture_output=True, timeout=120,
            )  # fmt: skip
            out.write_bytes(_trim_bottom(shot.read_bytes()))
        return "chromium"
    from PIL import Image

    charts = [Image.open(p).convert("RGB") for p in sorted(html.parent.glob("*.png"))]
    sheet = Image.new("RGB", (charts[0].width, sum(c.height for c in charts)), "white")
    y = 0
    for chart in charts:
        sheet.paste(chart, (0, y))
        y += chart.height
    buffer = io.BytesIO()
    sheet.save(buffer, format="PNG")
    out.write_bytes(_trim_bottom(buffer.getvalue()))
    return "stacked charts (no chromium)"


def main(argv: list[str] | None = None) -> int:
    """Build the sample warehouse, render the report and photograph it into `out`."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path, help="PNG to write, e.g. docs/images/funnel_report.png")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    import pgserver

    from ingest.loader import load_manifest_dir
    from onramp.dbt import run_dbt
    from onramp.warehouse import get_engine
    from report.build import render_report
    from sample_data import generate

    with tempfile.TemporaryDirectory(prefix="onramp-screenshot-") as tmp:
        home = Path(tmp)
        os.environ["ONRAMP_HOME"] = str(home)
        os.environ["DBT_TARGET_PATH"] = str(home / "target")
        os.environ["DBT_LOG_PATH"] = str(home / "logs")
        server = pgserver.get_server(home / "postgres", cleanup_mode="stop")
        try:
            os.environ["ONRAMP_DATABASE_URL"] = server.get_uri("postgres")
            engine = get_engine()
            sample = generate(home / "sample", as_of=AS_OF, **SAMPLE).parent
            load_manifest_dir(engine, sample)
            # the stage history first (the simulation reads it), then everything with its tests
            run_dbt(["run", "--select", "+fct_developer_stage_daily"], as_of=AS_OF)
            rows = simulate_campaign_history(engine, AS_OF)
            log.info("simulated %d ledger rows", rows)
            dbt_vars = json.dumps({"lift_campaigns": CAMPAIGNS})
            run_dbt(["build", "--vars", dbt_vars], as_of=AS_OF)
            report = render_report(engine, AS_OF, home / "report")
            engine.dispose()
            args.out.parent.mkdir(parents=True, exist_ok=True)
            how = photograph(report.html_path, args.out)
        finally:
            server.cleanup()
    print(f"{args.out} ({how})")  # noqa: T201 - the script's result
    return 0


if __name__ == "__main__":
    sys.exit(main())
