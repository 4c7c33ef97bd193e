"""The Dagster UI, started the way a user starts it (`onramp ui`), seen through headless chromium:
the asset graph from raw loads to a segment sync, that sync's latest metadata, and the daily
partitions of raw, dbt and sync assets with the latest one materialized by the pipeline's run.

Needs Debian's chromium at /usr/bin/chromium (`.ci/run` installs it); skips without it.
"""

from __future__ import annotations

import datetime as dt
import html
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import dagster as dg
import pytest

from tests.orchestration.conftest import AS_OF

CHROMIUM = "/usr/bin/chromium"
pytestmark = pytest.mark.skipif(
    not (Path(CHROMIUM).exists() and shutil.which(CHROMIUM)),
    reason="headless-browser test needs Debian's chromium at /usr/bin/chromium "
    "(apt-get install -y chromium)",
)

LOCATIONS_QUERY = """
{ workspaceOrError { ... on Workspace { locationEntries {
    name loadStatus locationOrLoadError { __typename ... on PythonError { message } } } } } }
"""


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _graphql(base: str, query: str) -> dict:
    request = urllib.request.Request(
        f"{base}/graphql",
        data=json.dumps({"query": query}).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())


def _wait_for_code_location(base: str, process: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + 240
    last = "no answer"
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"onramp ui exited with {process.returncode}: {log.read_text()[-2000:]}")
        try:
            entries = _graphql(base, LOCATIONS_QUERY)["data"]["workspaceOrError"]["locationEntries"]
        except (OSError, ValueError, KeyError, TypeError) as exc:
            last = str(exc)
            time.sleep(2)
            continue
        entry = next((e for e in entries if e["name"] == "orchestration.definitions"), None)
        if entry and entry["loadStatus"] == "LOADED":
            error = entry["locationOrLoadError"] or {}
            assert error.get("__typename") != "PythonError", error.get("message")
            return
        last = json.dumps(entries)
        time.sleep(2)
    pytest.fail(f"the code location did not load in time: {last}")


def _chromium(profile: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [
            CHROMIUM,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-dev-shm-usage",
            f"--user-data-dir={profile}",
            "--window-size=1600,1000",
            "--virtual-time-budget=30000",
            *args,
        ],  # fmt: skip
        capture_output=True,
        timeout=180,
    )


def _text(dom: str) -> str:
    without_tags = re.sub(r"<[^>]+>", " ", dom)
    return html.unescape(re.sub(r"\s+", " ", without_tags))


@pytest.fixture(scope="module")
def ui(pipeline, tmp_path_factory: pytest.TempPathFactory):
    """`onramp ui --webserver-only` on a free port, stopped (with its process group) afterwards."""
    port = _free_port()
    log = tmp_path_factory.mktemp("ui") / "ui.log"
    onramp = [sys.executable, "-c", "from cli.main import cli; cli()"]
    with log.open("wb") as out:
        process = subprocess.Popen(
            [*onramp, "ui", "--webserver-only", "--host", "127.0.0.1", "--port", str(port)],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=dict(os.environ),
            start_new_session=True,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        _wait_for_code_location(base, process, log)
        yield base
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=10)
        try:  # the webserver's code server, if it outlived its parent
            os.killpg(process.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass


def test_ui_shows_asset_graph_and_latest_sync_metadata(ui, pipeline, instance, tmp_path: Path):
    segment = next(name for name, sync in pipeline.demo.syncs.items() if sync["sent"] > 0)
    key = dg.AssetKey(f"sync_{segment}")
    latest = instance.get_latest_materialization_event(key)
    members = latest.asset_materialization.metadata["members"].value
    profile = tmp_path / "chromium-profile"

    lineage = "view=lineage&lineageScope=upstream&lineageDepth=10"
    lineage_url = f"{ui}/assets/{key.to_user_string()}?{lineage}"
    graph_png = tmp_path / "asset-graph.png"
    shot = _chromium(profile, f"--screenshot={graph_png}", lineage_url)
    assert graph_png.exists() and graph_png.stat().st_size > 20_000, shot.stderr[-2000:]
    graph = _text(_chromium(profile, "--dump-dom", lineage_url).stdout.decode())
    for group in ("raw", "staging", "segments", "email"):
        assert re.search(rf"\b{group}\b", graph), f"group {group} not in the asset graph"
    assert key.to_user_string() in graph

    asset_url = f"{ui}/assets/{key.to_user_string()}"
    metadata_png = tmp_path / "sync-metadata.png"
    _chromium(profile, f"--screenshot={metadata_png}", asset_url)
    assert metadata_png.exists() and metadata_png.stat().st_size > 20_000
    page = _text(_chromium(profile, "--dump-dom", asset_url).stdout.decode())
    metadata = page[page.find("Metadata") :]
    for label in ("members", "entered", "exited", "sent", "suppressed", "failed", "capped",
                  "dry_run", "held_back", "sample_email", "sample_member_keys"):  # fmt: skip
        assert re.search(rf"\b{label}\b", metadata), f"{label} not shown"
    # "members <timestamp> 10 entered ...": the value shown is the latest materialization's
    assert re.search(rf"\bmembers\b.{{0,60}}\s{members}\s+entered\b", metadata)
    assert AS_OF.isoformat() in metadata


def _page(profile: Path, url: str, expected: str, attempts: int = 3) -> str:
    """The page's text once it shows `expected` (a busy machine may dump it before it renders)."""
    page = ""
    for _ in range(attempts):
        page = _text(_chromium(profile, "--dump-dom", url).stdout.decode())
        if expected in page:
            break
    return page


def test_ui_shows_daily_partitions_with_the_latest_one_materialized(
    ui, pipeline, instance, tmp_path: Path
):
    from orchestration.lib.partitions import DAILY

    latest = DAILY.get_last_partition_key()
    assert latest == AS_OF.isoformat() == pipeline.demo.as_of.isoformat()
    total = len(DAILY.get_partition_keys())
    profile = tmp_path / "chromium-profile"
    for asset in ("raw_api_events", "seg_stopped_traffic", "sync_stopped_traffic"):
        url = f"{ui}/assets/{asset}?view=partitions"
        png = tmp_path / f"{asset}-partitions.png"
        _chromium(profile, f"--screenshot={png}", url)
        assert png.exists() and png.stat().st_size > 20_000
        page = _page(profile, url, f"{total} Partitions")
        assert f"{total} Partitions" in page, (asset, page[:400])
        assert "Materialized (1)" in page and f"Missing ({total - 1})" in page, asset
        assert page.index(latest) < page.index((AS_OF - dt.timedelta(days=1)).isoformat())
        # the latest partition, opened: materialized by the latest run that built it
        run_id = instance.get_latest_materialization_event(dg.AssetKey(asset)).run_id
        detail = _page(profile, f"{url}&partition={latest}", run_id[:8])
        assert "Latest materialization" in detail and run_id[:8] in detail, asset
