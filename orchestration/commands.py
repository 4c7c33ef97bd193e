"""`onramp ui`: the Dagster UI (and daemon) on the same settings as every other command.

The UI runs `dagster dev` on the code location `orchestration.definitions` with
``DAGSTER_HOME`` = the settings' Dagster folder (``$ONRAMP_HOME/dagster`` unless set), a
dagster.yaml written there when missing, and the warehouse environment of the other commands: the
embedded PostgreSQL is started here first and its URL handed down, so the UI, its daemon and
every run reach the same database `onramp build` and `onramp sync` use.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
from pathlib import Path

import click

from onramp.settings import Settings

log = logging.getLogger(__name__)

CODE_LOCATION_MODULE = "orchestration.definitions"
REPO_ROOT = Path(__file__).resolve().parents[1]


def ui_environment(settings: Settings) -> dict[str, str]:
    """os.environ plus everything a Dagster process needs to see the settings of this one."""
    from onramp.warehouse import database_url, dbt_env
    from orchestration.lib.instance import ensure_dagster_home

    dagster_home = ensure_dagster_home(settings)
    env = dict(os.environ)
    env.update(
        {
            "ONRAMP_HOME": str(settings.home),
            "DAGSTER_HOME": str(dagster_home),
            "ONRAMP_DATABASE_URL": database_url(settings),
            "ONRAMP_LANDING_DIR": str(settings.landing_dir),
            **dbt_env(settings),
        }
    )
    # dbt and dagster executables of this install, even when its venv is not activated.
    bin_dir = str(Path(sys.executable).parent)
    env["PATH"] = f"{bin_dir}{os.pathsep}{env.get('PATH', '')}"
    existing = env.get("PYTHONPATH")
    env["PYTHONPATH"] = f"{REPO_ROOT}{os.pathsep}{existing}" if existing else str(REPO_ROOT)
    return env


def ui_command_line(host: str, port: int, webserver_only: bool = False) -> list[str]:
    """`dagster dev` (webserver + daemon, so schedules and sensors tick) or the webserver alone."""
    if webserver_only:
        return [
            sys.executable, "-m", "dagster_webserver",
            "-m", CODE_LOCATION_MODULE, "-h", host, "-p", str(port),
        ]  # fmt: skip
    return [
        sys.executable, "-m", "dagster", "dev",
        "-m", CODE_LOCATION_MODULE, "-h", host, "-p", str(port),
    ]  # fmt: skip


def _interruptible() -> None:
    """In the child: SIGINT back to its default, even when `onramp ui` was started in the
    background by a shell that ignores SIGINT for background jobs (children inherit that)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Interface to listen on.")
@click.option("--port", default=3000, show_default=True, type=int, help="Port of the UI.")
@click.option(
    "--webserver-only",
    is_flag=True,
    help="Run the webserver without the daemon (schedules, sensors and queued runs stay idle).",
)
def ui(host: str, port: int, webserver_only: bool) -> None:
    """Open the Dagster UI on the same settings as every other command.

    Schedules and the landing sensor start stopped unless ONRAMP_SCHEDULES=on. Stop with Ctrl-C.
    """
    settings = Settings.from_env()
    env = ui_environment(settings)
    command = ui_command_line(host, port, webserver_only)
    click.echo(f"Dagster UI: http://{host}:{port}  (DAGSTER_HOME={env['DAGSTER_HOME']})")
    # Own session: a Ctrl-C reaches only `onramp ui`, which passes exactly one SIGINT on.
    process = subprocess.Popen(
        command, env=env, cwd=REPO_ROOT, start_new_session=True, preexec_fn=_interruptible
    )

    def forward(signum: int, _frame: object) -> None:
        # dagster dev shuts its webserver, daemon and code servers down cleanly on SIGINT
        # (KeyboardInterrupt), so a SIGTERM to `onramp ui` is passed on as SIGINT.
        if process.poll() is None:
            process.send_signal(signal.SIGINT)

    previous = {sig: signal.signal(sig, forward) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        code = process.wait()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        if process.poll() is None:
            process.terminate()
            process.wait(timeout=30)
    if code not in (0, -signal.SIGINT, -signal.SIGTERM):
        sys.exit(code)
