"""Verification of SendGrid's Signed Event Webhook: ECDSA P-256 / SHA-256 over timestamp + raw body.

The `sendgrid` package's own helper (`sendgrid.helpers.eventwebhook.EventWebhook`) loads the key
and checks the signature, so we verify exactly what SendGrid signs. Around it we add what the
helper leaves to the caller: missing headers, undecodable values and a replay window on the
timestamp. A rejection carries a short reason for the log; the body is never logged.
"""

from __future__ import annotations

import binascii
import time

from sendgrid.helpers.eventwebhook import EventWebhook

from onramp.errors import OnrampError

SIGNATURE_HEADER = "X-Twilio-Email-Event-Webhook-Signature"
TIMESTAMP_HEADER = "X-Twilio-Email-Event-Webhook-Timestamp"


class WebhookKeyError(OnrampError):
    """SENDGRID_WEBHOOK_PUBLIC_KEY is missing or not a base64 DER EC public key."""


class SignatureRejected(Exception):
    """A request whose signature cannot be trusted; `reason` is safe to log."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class WebhookVerifier:
    """Checks one request's signature headers against the configured public key."""

    def __init__(self, public_key: str | None, max_age_s: int = 600) -> None:
        if not public_key:
            raise WebhookKeyError(
                "SENDGRID_WEBHOOK_PUBLIC_KEY is not set: copy the verification key from "
                "SendGrid's Signed Event Webhook settings"
            )
        try:
            self._helper = EventWebhook(public_key.strip())
        except (ValueError, TypeError) as exc:
            raise WebhookKeyError(
                "SENDGRID_WEBHOOK_PUBLIC_KEY is not a base64 EC public key as SendGrid shows it"
            ) from exc
        self.max_age_s = max_age_s

    def verify(
        self, body: bytes, signature: str | None, timestamp: str | None, now: float | None = None
    ) -> None:
        """Return if the request is authentic and fresh, else raise SignatureRejected."""
        if not signature or not timestamp:
            raise SignatureRejected("missing signature headers")
        ts = timestamp.strip()
        if not ts.isdigit():
            raise SignatureRejected("timestamp is not unix seconds")
        age = (time.time() if now is None else now) - int(ts)
        if abs(age) > self.max_age_s:
            raise SignatureRejected(f"timestamp {age:+.0f}s from now, outside the window")
        try:
            # The helper re-encodes a str as UTF-8; a strict decode round-trips the raw bytes.
            payload = body.decode("utf-8")
            ok = self._helper.verify_signature(payload, signature.strip(), ts)
        except (UnicodeDecodeError, binascii.Error, ValueError):
            raise SignatureRejected("signature or body not decodable") from None
        if not ok:
            raise SignatureRejected("signature does not match")
