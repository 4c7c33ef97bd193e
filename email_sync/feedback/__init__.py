"""The feedback loop: SendGrid's Event Webhook, one-click unsubscribe, suppressions both ways.

Kept free of Dagster (like all of email_sync); the receiver (`onramp webhook`) is `app.py`.
"""
