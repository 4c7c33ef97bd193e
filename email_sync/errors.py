"""The one-line errors a sync raises, and the one-line form of any error it records."""

from __future__ import annotations

from email_sync.hashing import redact_addresses
from onramp.errors import OnrampError


class SegmentBusy(OnrampError):
    """Another sync of the same segment holds the lock."""


class BlastRadiusExceeded(OnrampError):
    """The change is too large to push without --allow-large."""


class SegmentMissing(OnrampError):
    """The segment table does not exist in the warehouse or breaks the column contract."""


def one_line(exc: BaseException) -> str:
    """First line of an error, addresses hashed: it goes to the ledger, run rows and summaries."""
    text = str(exc).strip().splitlines()
    return redact_addresses(text[0] if text else type(exc).__name__)[:500]
