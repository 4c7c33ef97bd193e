"""An API key in an access log's query string is stored hashed in `api_key_id` and removed from
`path` (and from the referer kept in `extras`)."""

from __future__ import annotations

import uuid

import sqlalchemy as sa

from ingest.loader import load_paths
from ingest.schema import ensure_raw_schema


def test_api_key_in_the_query_string_is_hashed_and_removed_from_path(engine, tmp_path):
    from onramp.redaction import hash_api_key

    ensure_raw_schema(engine)
    uid = "t" + uuid.uuid4().hex[:10]
    secret = f"sk_live_{uid}_{uuid.uuid4().hex}"
    log = tmp_path / "access.log"
    log.write_text(
        f"192.0.2.11 - {uid}_bob [20/Nov/2026:10:00:01 +0000] "
        f'"GET /v1/orders?page=2&api_key={secret}&sort=id HTTP/1.1" 200 12 '
        f'"https://app.example/x?api_key={secret}" "sdk/2"\n'
    )

    [result] = load_paths(engine, "api-events", [log])

    assert (result.rows_loaded, result.rows_rejected) == (1, 0)
    with engine.connect() as conn:
        row = (
            conn.execute(
                sa.text("select * from raw.api_events where batch_id = :b"), {"b": result.batch_id}
            )
            .mappings()
            .one()
        )
    assert row["path"] == "/v1/orders?page=2&sort=id"
    assert row["api_key_id"] == hash_api_key(secret) != secret
    assert secret not in repr(dict(row))
