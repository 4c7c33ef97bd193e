"""`onramp webhook`: SendGrid's Event Webhook and one-click unsubscribe, on Starlette + uvicorn.

Why this stack: Starlette and uvicorn are already installed with the Dagster webserver (so no new
dependency surface), are small, typed and actively maintained, give us the raw request body
(needed: the signature covers the exact bytes) and graceful shutdown that lets in-flight requests
finish. Database work is synchronous SQLAlchemy run in Starlette's thread pool, one transaction
per request; a request is answered 2xx only after its commit, so SendGrid retries what we did not
store.

Routes: POST /sendgrid/events, GET|POST /unsubscribe/{token}, GET /healthz. Logs say why a
request was refused and never carry a body or an address in clear.
"""

from __future__ import annotations

import contextlib
import html
import logging
import re
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import parse_qs

import sqlalchemy as sa
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from email_sync.feedback.events import BatchResult, store_batch
from email_sync.feedback.links import BadToken, links_from_settings, read_token
from email_sync.feedback.schema import ensure_feedback_schema
from email_sync.feedback.signature import (
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    SignatureRejected,
    WebhookVerifier,
)
from email_sync.feedback.unsubscribe import recipient_of, unsubscribe
from email_sync.hashing import hash_email
from onramp.settings import Settings

log = logging.getLogger(__name__)

MAX_BODY_BYTES = 16 * 1024 * 1024  # SendGrid batches are far smaller; anything bigger is refused
_MULTIPART_ONE_CLICK = re.compile(rb'name="List-Unsubscribe"\r?\n\r?\nOne-Click')


def _page(title: str, body: str, status: int = 200) -> HTMLResponse:
    return HTMLResponse(
        "<!doctype html><html lang=en><head><meta charset=utf-8>"
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        '<meta name="robots" content="noindex">'
        f"<title>{html.escape(title)}</title></head>"
        '<body style="font-family:-apple-system,Segoe UI,Helvetica,Arial,sans-serif;'
        'max-width:32rem;margin:4rem auto;padding:0 1rem;color:#1f2328">'
        f"<h1 style='font-size:1.3rem'>{html.escape(title)}</h1>{body}</body></html>",
        status_code=status,
        headers={"Cache-Control": "no-store", "Referrer-Policy": "no-referrer"},
    )


def _is_one_click(body: bytes, content_type: str) -> bool:
    """RFC 8058: the POST body carries List-Unsubscribe=One-Click (urlencoded or multipart)."""
    if "multipart/form-data" in content_type:
        return bool(_MULTIPART_ONE_CLICK.search(body))
    try:
        form = parse_qs(body.decode("ascii"), keep_blank_values=True)
    except UnicodeDecodeError:
        return False
    return "One-Click" in form.get("List-Unsubscribe", [])


def _kind(exc: sa.exc.SQLAlchemyError) -> str:
    """The error class and SQLSTATE, never the message (it carries statement parameters)."""
    orig = getattr(exc, "orig", None)
    state = getattr(orig, "sqlstate", None)
    return f"{type(orig or exc).__name__}{f' {state}' if state else ''}"


class Receiver:
    """The receiver's state: engine, verifier and unsubscribe secret, built once at start."""

    def __init__(self, settings: Settings, engine: sa.Engine) -> None:
        self.settings = settings
        self.engine = engine
        self.verifier: WebhookVerifier | None = None
        if settings.webhook_public_key:
            self.verifier = WebhookVerifier(settings.webhook_public_key, settings.webhook_max_age_s)
        else:
            log.warning("SENDGRID_WEBHOOK_PUBLIC_KEY is not set: /sendgrid/events answers 503")
        # Only the secret matters here (not the URL base or postal address of the sending side).
        links = links_from_settings(settings)
        self.secret = settings.unsubscribe_secret or (links.secret if links else None)
        if self.secret is None:
            log.warning("ONRAMP_UNSUBSCRIBE_SECRET is not set: /unsubscribe answers 503")

    def prepare(self) -> None:
        with self.engine.begin() as conn:
            ensure_feedback_schema(conn)  # email_sync's schema first, then the raw tables

    def store(self, body: bytes) -> BatchResult:
        with self.engine.begin() as conn:
            return store_batch(conn, body)

    def unsubscribe(self, message_id: str, scope: str) -> str | None:
        with self.engine.begin() as conn:
            return unsubscribe(conn, message_id, scope)

    def known(self, message_id: str) -> bool:
        with self.engine.connect() as conn:
            return recipient_of(conn, message_id) is not None

    def healthy(self) -> bool:
        try:
            with self.engine.connect() as conn:
                conn.execute(sa.text("select 1"))
            return True
        except sa.exc.SQLAlchemyError:
            return False

    # --- routes ---------------------------------------------------------------------------------

    async def events(self, request: Request) -> Response:
        client = request.client.host if request.client else "?"
        if self.verifier is None:
            return PlainTextResponse("event webhook not configured", status_code=503)
        body = await request.body()
        if len(body) > MAX_BODY_BYTES:
            log.warning("event webhook refused from %s: body too large", client)
            return PlainTextResponse("body too large", status_code=413)
        try:
            self.verifier.verify(
                body, request.headers.get(SIGNATURE_HEADER), request.headers.get(TIMESTAMP_HEADER)
            )
        except SignatureRejected as exc:
            log.warning("event webhook refused from %s: %s", client, exc.reason)
            return PlainTextResponse("forbidden", status_code=403)
        try:
            result = await run_in_threadpool(self.store, body)
        except sa.exc.SQLAlchemyError as exc:
            # SQLAlchemy's message quotes the statement's parameters (the events): log the kind
            # only. Not 2xx, so SendGrid retries the batch.
            log.error("event webhook: batch not stored (%s); SendGrid will retry", _kind(exc))
            return PlainTextResponse("not stored, retry later", status_code=503)
        if result.quarantined:
            log.warning(
                "event webhook: %d event(s) quarantined (%s)",
                result.quarantined,
                "; ".join(result.reasons),
            )
        log.info(
            "event webhook: %d received, %d stored, %d duplicate, %d quarantined",
            result.received,
            result.stored,
            result.duplicates,
            result.quarantined,
        )
        return JSONResponse(
            {
                "received": result.received,
                "stored": result.stored,
                "duplicates": result.duplicates,
                "quarantined": result.quarantined,
            }
        )

    def _token(self, request: Request) -> tuple[str, str] | Response:
        if self.secret is None:
            return _page("Unsubscribe is not available", "<p>Please try again later.</p>", 503)
        try:
            return read_token(self.secret, request.path_params["token"])
        except BadToken as exc:
            log.info("unsubscribe link refused: %s", exc)
            return _page("This link is not valid", "<p>Use the link in a recent email.</p>", 404)

    async def unsubscribe_page(self, request: Request) -> Response:
        """GET shows a confirm button and changes nothing: link scanners follow links."""
        parsed = self._token(request)
        if isinstance(parsed, Response):
            return parsed
        message_id, scope = parsed
        if not await run_in_threadpool(self.known, message_id):
            return _page("This link is not valid", "<p>Use the link in a recent email.</p>", 404)
        what = html.escape(scope)
        return _page(
            f"Unsubscribe from {scope} email?",
            f"<p>You will no longer get {what} email from us. Service notices about your account "
            "still reach you.</p>"
            '<form method="post"><input type="hidden" name="List-Unsubscribe" value="One-Click">'
            '<button type="submit" style="padding:.6rem 1.2rem;font-size:1rem">Unsubscribe'
            "</button></form>",
        )

    async def unsubscribe_post(self, request: Request) -> Response:
        """RFC 8058 one-click (and the confirm form): suppress, answer 200 after the commit."""
        parsed = self._token(request)
        if isinstance(parsed, Response):
            return parsed
        body = await request.body()
        if len(body) > 64 * 1024 or not _is_one_click(
            body, request.headers.get("content-type", "")
        ):
            return _page("Unsubscribe", "<p>Use the button on the unsubscribe page.</p>", 400)
        message_id, scope = parsed
        try:
            email = await run_in_threadpool(self.unsubscribe, message_id, scope)
        except sa.exc.SQLAlchemyError as exc:
            log.error("one-click unsubscribe not stored (%s)", _kind(exc))
            return _page("Please try again", "<p>We could not record that just now.</p>", 503)
        if email is None:
            return _page("This link is not valid", "<p>Use the link in a recent email.</p>", 404)
        log.info("one-click unsubscribe: %s from %s", hash_email(email), scope)
        done = f"<p>You will get no more {html.escape(scope)} email.</p>"
        return _page("You are unsubscribed", done)

    async def healthz(self, request: Request) -> Response:
        ok = await run_in_threadpool(self.healthy)
        return JSONResponse({"status": "ok" if ok else "database unavailable"}, 200 if ok else 503)


def create_app(settings: Settings | None = None, engine: sa.Engine | None = None) -> Starlette:
    """The ASGI app; the engine is created (and the schema ensured) at start-up."""
    settings = settings or Settings.from_env()
    state: dict[str, Any] = {}

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        own = engine is None
        if own:
            from onramp.warehouse import get_engine

            eng = get_engine(settings)
        else:
            eng = engine
        receiver = Receiver(settings, eng)
        await run_in_threadpool(receiver.prepare)
        state["receiver"] = receiver
        try:
            yield
        finally:
            if own:
                eng.dispose()

    def route(name: str):
        async def handler(request: Request) -> Response:
            return await getattr(state["receiver"], name)(request)

        return handler

    return Starlette(
        routes=[
            Route("/sendgrid/events", route("events"), methods=["POST"]),
            Route("/unsubscribe/{token}", route("unsubscribe_page"), methods=["GET"]),
            Route("/unsubscribe/{token}", route("unsubscribe_post"), methods=["POST"]),
            Route("/healthz", route("healthz"), methods=["GET"]),
        ],
        lifespan=lifespan,
    )
