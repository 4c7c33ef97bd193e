"""The one-line errors of a CRM push, and the one-line form of any error it records."""

from __future__ import annotations

from crm_sync.hashing import redact_addresses
from onramp.errors import OnrampError


class CrmError(OnrampError):
    """The push cannot go on (HubSpot unreachable, token refused, a property of the wrong type)."""


class PumpMissing(CrmError):
    """The pump table is not in the warehouse, or the manifest declares no pump."""


class BlastRadiusExceeded(CrmError):
    """The change is too large to push without --allow-large."""


class PushBusy(CrmError):
    """Another push of the same pump holds the lock."""


def one_line(exc: BaseException | str) -> str:
    """First line of an error, addresses hashed: it goes to the warehouse, logs and summaries."""
    text = str(exc).strip().splitlines()
    first = text[0] if text else type(exc).__name__
    return redact_addresses(first)[:500]
