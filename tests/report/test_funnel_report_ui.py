"""The funnel_report asset's latest materialization, opened in the Dagster UI by headless Chromium.

The webserver serves a code location with the report asset (tests/report/ui_location.py) on an
instance holding one real materialization; Chromium, driven over the DevTools protocol, opens the
asset page, opens the `report` markdown metadata and finds the lift chart as a decoded image.
Needs Debian's chromium (`.ci/run` installs it) and the websockets package; skips without them.
"""

from __future__ import annotations

import base64
import json
import os
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

from tests.report.conftest import ReportWarehouse

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
pytestmark = pytest.mark.skipif(
    not Path(CHROMIUM).exists(), reason="needs Debian's chromium (apt-get install -y chromium)"
)
websockets_sync = pytest.importorskip("websockets.sync.client")

REPO = Path(__file__).resolve().parents[2]
CHART_ALT = "Campaign lift against holdouts"
# clicks the "Show Markdown" link of the `report` metadata, then reports the chart it finds
FIND_CHART = """
(() => {
  const img = document.querySelector('img[alt="CHART_ALT"]');
  if (img && img.complete && img.naturalWidth > 0) {
    return {found: true, width: img.naturalWidth, height: img.naturalHeight};
  }
  const links = [...document.querySelectorAll('button, a, span, div')]
    .filter(el => el.children.length === 0 && /show markdown/i.test(el.textContent || ''));
  if (links.length) { links[0].click(); }
  return {found: false, links: links.length, text: document.body.innerText.slice(0, 400)};
})()
""".replace("CHART_ALT", CHART_ALT)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _get_json(url: str) -> object:
    with urllib.request.urlopen(url, timeout=10) as response:
        return json.loads(response.read())


def _stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)


@pytest.fixture
def webserver(report_warehouse: ReportWarehouse, tmp_path: Path):
    from orchestration.defs.report import funnel_report
    from orchestration.lib.resources import RESOURCE_KEY, OnrampResource

    dagster_home = tmp_path / "dagster"
    dagster_home.mkdir()
    instance = dg.DagsterInstance.from_config(str(dagster_home))
    result = dg.materialize(
        [funnel_report],
        instance=instance,
        resources={RESOURCE_KEY: OnrampResource()},
        partition_key=report_warehouse.as_of.isoformat(),
    )
    assert result.success
    port = _free_port()
    log = (tmp_path / "webserver.log").open("wb")
    process = subprocess.Popen(
        [sys.executable, "-m", "dagster_webserver", "-m", "tests.report.ui_location",
         "-h", "127.0.0.1", "-p", str(port)],
        cwd=REPO, env={**os.environ, "DAGSTER_HOME": str(dagster_home)},
        stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 180
        while True:
            try:
                _get_json(f"{base}/server_info")
                break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    pytest.fail((tmp_path / "webserver.log").read_text()[-2000:])
                time.sleep(1)
        yield base
    finally:
        _stop(process)
        log.close()


def test_ui_shows_the_lift_chart_of_the_latest_materialization(webserver: str, tmp_path: Path):
    port = _free_port()
    browser = subprocess.Popen(
        [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
         "--disable-dev-shm-usage", "--disable-background-networking",
         f"--user-data-dir={tmp_path / 'profile'}", f"--remote-debugging-port={port}",
         "--window-size=1600,1000", "about:blank"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                targets = _get_json(f"http://127.0.0.1:{port}/json")
                page = next(t for t in targets if t["type"] == "page")
                break
            except (OSError, StopIteration, ValueError):
                assert time.monotonic() < deadline, "chromium did not start"
                time.sleep(0.5)
        with websockets_sync.connect(page["webSocketDebuggerUrl"], max_size=None) as ws:
            ids = iter(range(1, 10_000))

            def call(method: str, **params) -> dict:
                message_id = next(ids)
                ws.send(json.dumps({"id": message_id, "method": method, "params": params}))
                while True:
                    reply = json.loads(ws.recv(timeout=60))
                    if reply.get("id") == message_id:
                        return reply.get("result", {})

            call("Page.navigate", url=f"{webserver}/assets/funnel_report")
            state: dict = {}
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline:
                result = call("Runtime.evaluate", expression=FIND_CHART, returnByValue=True)
                state = result.get("result", {}).get("value") or {}
                if state.get("found"):
                    break
                time.sleep(1)
            shot = call("Page.captureScreenshot", format="png")
            (tmp_path / "funnel_report_ui.png").write_bytes(base64.b64decode(shot["data"]))
    finally:
        _stop(browser)
    assert state.get("found"), f"the chart is not shown: {state}"
    assert (state["width"], state["height"]) == (1000, 500)
