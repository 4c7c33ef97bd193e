"""email_sync: segment membership to the email provider, exactly once through a ledger."""
