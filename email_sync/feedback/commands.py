"""`onramp webhook`: run the Event Webhook + one-click unsubscribe receiver with uvicorn."""

from __future__ import annotations

import click

from onramp.settings import Settings


@click.command("webhook")
@click.option("--host", default="127.0.0.1", show_default=True, help="Interface to listen on.")
@click.option("--port", default=8080, show_default=True, type=int, help="Port to listen on.")
@click.option(
    "--graceful-timeout",
    default=30,
    show_default=True,
    type=int,
    help="Seconds in-flight requests get to finish on shutdown (SIGTERM / Ctrl-C).",
)
def webhook(host: str, port: int, graceful_timeout: int) -> None:
    """Receive SendGrid's Event Webhook (POST /sendgrid/events) and one-click unsubscribes
    (/unsubscribe/TOKEN). Run it behind a TLS-terminating proxy; see README."""
    import uvicorn

    from email_sync.feedback.app import create_app
    from onramp.warehouse import get_engine

    settings = Settings.from_env()
    engine = get_engine(settings)  # fail with one line before binding the port
    if settings.webhook_public_key:
        from email_sync.feedback.signature import WebhookVerifier

        WebhookVerifier(settings.webhook_public_key)  # a bad key is one line, not a traceback
    click.echo(f"onramp webhook listening on http://{host}:{port} (Ctrl-C to stop)")
    uvicorn.run(
        create_app(settings, engine),
        host=host,
        port=port,
        proxy_headers=True,  # client address from X-Forwarded-For of the TLS proxy
        timeout_graceful_shutdown=graceful_timeout,
        log_level="info",
        access_log=False,  # paths carry unsubscribe tokens
    )
