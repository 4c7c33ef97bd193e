"""No secret or address in a log line, an error or a Dagster tag/metadata (issue: hardening 16)."""

from __future__ import annotations

import dataclasses
import hashlib
from pathlib import Path

import pytest
import sqlalchemy as sa

from onramp.settings import Settings

SECRET = "hunter2-Very-Secret"
ADDRESS = "jane.doe@example.com"


def test_engine_hides_bound_parameters_in_errors(engine):
    with pytest.raises(sa.exc.DBAPIError) as caught:
        with engine.connect() as conn:
            conn.execute(
                sa.text("select * from no_such_table where email = :address and pw = :password"),
                {"address": ADDRESS, "password": SECRET},
            )
    text = str(caught.value)
    assert ADDRESS not in text and SECRET not in text
    assert "hidden due to hide_parameters" in text


@pytest.mark.parametrize(
    "message",
    [
        f"connection to postgresql://onramp:{SECRET}@db.internal:5432/x failed",
        f"cannot connect to smtp://mailer:{SECRET}@smtp.example.com:587",
        f"401 Authorization: Bearer SG.{SECRET}.abcdefghijklmnop rejected",
        f"conninfo host=db password={SECRET} sslmode=require",
        f"mail send rejected for {ADDRESS}: bounced",
    ],
)
def test_failure_lines_mask_secrets_and_addresses(message):
    from email_sync.redaction import safe_line

    line = safe_line(RuntimeError(message + "\nsecond line " + SECRET))
    assert SECRET not in line and ADDRESS not in line
    assert "\n" not in line


def settings_for(tmp_path: Path, **overrides) -> Settings:
    base = Settings.from_env()
    return dataclasses.replace(base, home=tmp_path / "home", **overrides)


def test_provider_account_tag_is_salted_and_ignores_the_smtp_password(tmp_path):
    from email_sync.redaction import provider_account

    one = settings_for(
        tmp_path, email_provider="smtp", smtp_url=f"smtp://mailer:{SECRET}@smtp.example.com:587"
    )
    rotated = dataclasses.replace(one, smtp_url="smtp://mailer:new-password@smtp.example.com:587")
    other = dataclasses.replace(one, smtp_url=f"smtp://other:{SECRET}@smtp.example.com:587")

    tag = provider_account(one)
    assert tag.startswith("smtp-")
    assert tag == provider_account(rotated)  # the password is not part of the account
    assert tag != provider_account(other)
    assert SECRET not in tag
    unsalted = hashlib.sha256(b"smtp|smtp|smtp.example.com|587|mailer").hexdigest()
    assert tag[len("smtp-") :] not in unsalted
    # Another install (another salt) gets another tag for the same account.
    elsewhere = dataclasses.replace(one, home=tmp_path / "elsewhere")
    assert provider_account(elsewhere) != tag
    salt = (tmp_path / "home" / ".provider_tag_salt").stat()
    assert salt.st_mode & 0o077 == 0

    # Shaped like a SendGrid key (SG.<22>.<43>), built here so no key-like literal is committed.
    key = "SG." + "k" * 22 + "." + "s" * 43
    sg = settings_for(tmp_path, email_provider="sendgrid", sendgrid_api_key=key)
    assert key not in provider_account(sg) and provider_account(sg).startswith("sendgrid-")
