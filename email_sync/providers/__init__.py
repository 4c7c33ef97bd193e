"""Delivery channels behind one interface: outbox (default), sendgrid, smtp."""

from __future__ import annotations

from email_sync.providers.base import (
    AmbiguousSendError,
    Contact,
    ImportJob,
    ListOutcome,
    ListsUnsupported,
    OutgoingEmail,
    Provider,
    ProviderError,
    RetryPolicy,
    SendOutcome,
)
from onramp.settings import Settings

__all__ = [
    "AmbiguousSendError",
    "Contact",
    "ImportJob",
    "ListOutcome",
    "ListsUnsupported",
    "OutgoingEmail",
    "Provider",
    "ProviderError",
    "RetryPolicy",
    "SendOutcome",
    "get_provider",
]


def get_provider(settings: Settings, retry: RetryPolicy | None = None) -> Provider:
    """The provider `ONRAMP_EMAIL_PROVIDER` names, configured from settings."""
    if settings.email_provider == "sendgrid":
        from email_sync.providers.sendgrid import SendGridProvider

        return SendGridProvider.from_settings(settings, retry=retry)
    if settings.email_provider == "smtp":
        from email_sync.providers.smtp import SmtpProvider

        return SmtpProvider.from_settings(settings, retry=retry)
    from email_sync.providers.outbox import OutboxProvider

    return OutboxProvider(settings.outbox_dir, settings.email_from)
