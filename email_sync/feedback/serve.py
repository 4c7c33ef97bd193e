"""Run the receiver inside this process on a background thread (tests, bench, embedding).

`onramp webhook` runs uvicorn in the foreground instead; this wrapper gives the same app a real
socket on an ephemeral port and a clean, graceful stop.
"""

from __future__ import annotations

import socket
import threading
import time

import sqlalchemy as sa
import uvicorn

from email_sync.feedback.app import create_app
from onramp.settings import Settings


class ReceiverThread:
    """`with ReceiverThread(settings, engine) as r: r.url` - uvicorn on 127.0.0.1:<free port>."""

    def __init__(
        self, settings: Settings, engine: sa.Engine | None = None, host: str = "127.0.0.1"
    ) -> None:
        with socket.socket() as probe:
            probe.bind((host, 0))
            self.port = probe.getsockname()[1]
        self.host = host
        config = uvicorn.Config(
            create_app(settings, engine),
            host=host,
            port=self.port,
            log_level="warning",
            access_log=False,
            timeout_graceful_shutdown=10,
            lifespan="on",
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, name="onramp-webhook", daemon=True)

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self, timeout: float = 20.0) -> ReceiverThread:
        self.thread.start()
        deadline = time.monotonic() + timeout
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the webhook receiver did not start")
            time.sleep(0.02)
        return self

    def stop(self) -> None:
        """Graceful: uvicorn stops accepting and lets in-flight requests finish."""
        self.server.should_exit = True
        self.thread.join(timeout=30)

    def __enter__(self) -> ReceiverThread:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
