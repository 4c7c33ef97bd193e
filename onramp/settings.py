"""Every setting onramp reads, from the environment, in one typed object.

Secrets (SendGrid key, SMTP password, HubSpot token) live only here and in the environment;
`__repr__` hides them so a settings object can be logged safely.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from onramp.errors import OnrampError


def _int(name: str, default: int) -> int:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        return int(raw)
    except ValueError as exc:
        raise SettingsError(f"{name} must be an integer, got {raw!r}") from exc


def _float(name: str, default: float) -> float:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        return float(raw)
    except ValueError as exc:
        raise SettingsError(f"{name} must be a number, got {raw!r}") from exc


WAREHOUSES = ("postgres", "spark")


class SettingsError(OnrampError):
    """A setting in the environment has a value onramp cannot use."""


@dataclass(frozen=True)
class Settings:
    """Every setting onramp reads, from the environment (secrets hidden from repr)."""

    home: Path
    database_url: str | None
    dagster_home: Path
    email_provider: str
    email_from: str
    sendgrid_api_key: str | None = field(repr=False)
    sendgrid_api_host: str | None
    smtp_url: str | None = field(repr=False)
    landing_dir: Path
    daily_email_cap: int
    weekly_email_cap: int
    blast_radius_share: float
    blast_radius_min_members: int
    max_send_attempts: int
    http_timeout_s: float
    # Feedback loop (Event Webhook, one-click unsubscribe); defaults keep older callers working.
    public_url: str | None = None
    unsubscribe_secret: str | None = field(default=None, repr=False)
    unsubscribe_mailto: str | None = None
    webhook_public_key: str | None = field(default=None, repr=False)
    webhook_max_age_s: int = 600
    postal_address: str | None = None
    # CRM (crm_sync): a HubSpot private app token, a local peer for tests, the company key.
    hubspot_access_token: str | None = field(default=None, repr=False)
    hubspot_api_host: str | None = None
    hubspot_company_id_property: str = "onramp_company_id"
    dashboard_url: str | None = None
    # Longest a sync waits on SendGrid contact import jobs; unfinished ones are confirmed later.
    import_wait_s: float = 10.0
    # Where dbt builds the models: "postgres" (default) or "spark" (dbt-spark; the sync state and
    # ledger stay in PostgreSQL, database_url above: ONRAMP_STATE_DATABASE_URL, else embedded).
    warehouse: str = "postgres"
    spark_master: str = "local[*]"

    @property
    def postgres_dir(self) -> Path:
        return self.home / "postgres"

    @property
    def spark_dir(self) -> Path:
        """The local Spark warehouse and metastore (session method)."""
        return self.home / "spark"

    @property
    def outbox_dir(self) -> Path:
        return self.home / "outbox"

    @classmethod
    def from_env(cls) -> Settings:
        home = Path(os.environ.get("ONRAMP_HOME") or ".onramp").expanduser().resolve()
        provider = (os.environ.get("ONRAMP_EMAIL_PROVIDER") or "outbox").strip().lower()
        if provider not in {"outbox", "sendgrid", "smtp"}:
            raise SettingsError(
                f"ONRAMP_EMAIL_PROVIDER must be outbox, sendgrid or smtp, got {provider!r}"
            )
        warehouse = (os.environ.get("ONRAMP_WAREHOUSE") or "postgres").strip().lower()
        if warehouse not in WAREHOUSES:
            raise SettingsError(f"ONRAMP_WAREHOUSE must be postgres or spark, got {warehouse!r}")
        # With Spark building the models, PostgreSQL keeps only the sync state and ledger.
        state_url = os.environ.get("ONRAMP_STATE_DATABASE_URL") if warehouse == "spark" else None
        dagster_home = os.environ.get("DAGSTER_HOME")
        landing = os.environ.get("ONRAMP_LANDING_DIR")
        return cls(
            home=home,
            database_url=state_url or os.environ.get("ONRAMP_DATABASE_URL") or None,
            dagster_home=Path(dagster_home).resolve() if dagster_home else home / "dagster",
            email_provider=provider,
            email_from=os.environ.get("ONRAMP_EMAIL_FROM") or "onramp@example.com",
            sendgrid_api_key=os.environ.get("SENDGRID_API_KEY") or None,
            sendgrid_api_host=os.environ.get("SENDGRID_API_HOST") or None,
            smtp_url=os.environ.get("ONRAMP_SMTP_URL") or None,
            landing_dir=Path(landing).resolve() if landing else home / "landing",
            daily_email_cap=_int("ONRAMP_DAILY_EMAIL_CAP", 1),
            weekly_email_cap=_int("ONRAMP_WEEKLY_EMAIL_CAP", 3),
            blast_radius_share=_float("ONRAMP_BLAST_RADIUS_SHARE", 0.5),
            blast_radius_min_members=_int("ONRAMP_BLAST_RADIUS_MIN_MEMBERS", 500),
            max_send_attempts=_int("ONRAMP_MAX_SEND_ATTEMPTS", 5),
            http_timeout_s=_float("ONRAMP_HTTP_TIMEOUT_S", 30.0),
            public_url=(os.environ.get("ONRAMP_PUBLIC_URL") or "").strip().rstrip("/") or None,
            unsubscribe_secret=os.environ.get("ONRAMP_UNSUBSCRIBE_SECRET") or None,
            unsubscribe_mailto=os.environ.get("ONRAMP_UNSUBSCRIBE_MAILTO") or None,
            webhook_public_key=(os.environ.get("SENDGRID_WEBHOOK_PUBLIC_KEY") or "").strip()
            or None,
            webhook_max_age_s=_int("ONRAMP_WEBHOOK_MAX_AGE_S", 600),
            postal_address=(os.environ.get("ONRAMP_POSTAL_ADDRESS") or "").strip() or None,
            hubspot_access_token=os.environ.get("HUBSPOT_ACCESS_TOKEN", "").strip() or None,
            hubspot_api_host=os.environ.get("HUBSPOT_API_HOST", "").strip().rstrip("/") or None,
            hubspot_company_id_property=(
                os.environ.get("HUBSPOT_COMPANY_ID_PROPERTY", "").strip() or "onramp_company_id"
            ),
            dashboard_url=os.environ.get("ONRAMP_DASHBOARD_URL") or None,
            import_wait_s=_float("ONRAMP_IMPORT_WAIT_S", 10.0),
            warehouse=warehouse,
            spark_master=(os.environ.get("ONRAMP_SPARK_MASTER") or "local[*]").strip(),
        )
