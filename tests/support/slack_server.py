"""Local peers for team notifications: a Slack incoming webhook and a generic signed-JSON receiver.

The Slack side keeps the incoming-webhook contract onramp relies on: POST a JSON object with
`text` and/or `blocks` to the hook's URL; 200 with the body `ok`; 400 `invalid_payload` for a body
that is not a JSON object, 400 `no_text` when neither text nor blocks is given, 400
`invalid_blocks` when Block Kit limits are broken (at most 50 blocks, header plain_text at most
150 characters, section text at most 3000), 404 `no_service` for an unknown hook path, 429 with
`Retry-After` when rate limited, and 5xx when Slack has trouble. Faults are queued per test:
`server.fail_next(429, retry_after=2)`, `server.fail_next(500)`.

The generic receiver checks `X-Onramp-Signature` (`v1=` + hex HMAC-SHA256 of `<timestamp>.<body>`
with the shared secret, timestamp from `X-Onramp-Timestamp`) and answers 401 when it is wrong.

Usage::

    with SlackServer() as slack:
        os.environ["ONRAMP_SLACK_WEBHOOK_URL"] = slack.hook_url
        ...
        slack.messages      # JSON bodies accepted, in order
        slack.requests      # every request: (path, status, body)
"""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

HOOK_PATH = "/services/T00000000/B00000000/XXXXXXXXXXXXXXXXXXXXXXXX"


@dataclass
class _Fault:
    status: int
    retry_after: int | None = None


@dataclass
class Received:
    path: str
    status: int
    body: bytes
    headers: dict[str, str] = field(default_factory=dict)


def _check_blocks(blocks: Any) -> bool:
    if not isinstance(blocks, list) or len(blocks) > 50:
        return False
    for block in blocks:
        if not isinstance(block, dict) or "type" not in block:
            return False
        text = block.get("text") or {}
        if block["type"] == "header" and (
            text.get("type") != "plain_text" or len(text.get("text", "")) > 150
        ):
            return False
        if block["type"] == "section" and len(text.get("text", "")) > 3000:
            return False
    return True


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True


class SlackServer:
    """Slack incoming webhook (`hook_url`) and a generic signed receiver (`generic_url`)."""

    def __init__(self, secret: str = "team-webhook-secret") -> None:
        self.secret = secret
        self.requests: list[Received] = []
        self.messages: list[dict[str, Any]] = []
        self.generic: list[dict[str, Any]] = []
        self._faults: deque[_Fault] = deque()
        self._lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:  # keep test output clean
                return

            def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                status, text, headers = server._answer(self.path, body, dict(self.headers))
                with server._lock:
                    server.requests.append(Received(self.path, status, body, dict(self.headers)))
                payload = text.encode()
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Type", "text/plain; charset=utf-8")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

        self._httpd = _Server(("127.0.0.1", 0), Handler)
        self.port = self._httpd.server_address[1]
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)

    @property
    def hook_url(self) -> str:
        return f"http://127.0.0.1:{self.port}{HOOK_PATH}"

    @property
    def generic_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/generic"

    def fail_next(self, status: int, retry_after: int | None = None, times: int = 1) -> None:
        """The next `times` requests get `status` (429 with Retry-After when given)."""
        with self._lock:
            self._faults.extend(_Fault(status, retry_after) for _ in range(times))

    def _answer(self, path: str, body: bytes, headers: dict[str, str]):
        with self._lock:
            fault = self._faults.popleft() if self._faults else None
        if fault is not None:
            extra = {"Retry-After": str(fault.retry_after)} if fault.retry_after is not None else {}
            text = {429: "rate_limited", 500: "rollup_error"}.get(fault.status, "error")
            return fault.status, text, extra
        if path == "/generic":
            return self._generic(body, headers)
        if path != HOOK_PATH:
            return 404, "no_service", {}
        try:
            message = json.loads(body)
        except ValueError:
            return 400, "invalid_payload", {}
        if not isinstance(message, dict):
            return 400, "invalid_payload", {}
        if not message.get("text") and not message.get("blocks"):
            return 400, "no_text", {}
        if "blocks" in message and not _check_blocks(message["blocks"]):
            return 400, "invalid_blocks", {}
        with self._lock:
            self.messages.append(message)
        return 200, "ok", {}

    def _generic(self, body: bytes, headers: dict[str, str]):
        lower = {k.lower(): v for k, v in headers.items()}
        timestamp = lower.get("x-onramp-timestamp", "")
        expected = (
            "v1="
            + hmac.new(
                self.secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256
            ).hexdigest()
        )
        if not hmac.compare_digest(expected, lower.get("x-onramp-signature", "")):
            return 401, "bad signature", {}
        with self._lock:
            self.generic.append(json.loads(body))
        return 204, "", {}

    def __enter__(self) -> SlackServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()


try:  # the fixture is optional: a bench may import this module without pytest
    import pytest

    @pytest.fixture
    def slack_server() -> Iterator[SlackServer]:
        with SlackServer() as server:
            yield server

except ImportError:  # pragma: no cover
    pass
