"""Render a campaign's step for a real member, or for a sample one, without sending anything.

`onramp preview` and the template test share `SAMPLE_MEMBER`: one member carrying every column a
shipped template reads, so a preview works before the first build and the test proves no
template needs a column that no segment provides.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

import sqlalchemy as sa

from email_sync.errors import SegmentMissing
from email_sync.membership import require_segment_table
from email_sync.render import Rendered, Renderer
from email_sync.specs import SegmentSpec, SpecError

SAMPLE_MEMBER: dict[str, Any] = {
    "member_key": "dev_sample",
    "developer_id": "dev_sample",
    "email": "ada@example.com",
    "name": "Ada Lovelace",
    "role": "engineering",
    "company_name": "Analytical Engines Ltd",
    "marketing_opt_in": True,
    "plan": "free",
    "stage": "not_integrated",
    "events_7d": 8421,
    "signup_date": date(2026, 11, 2),
    "signed_up_at": datetime(2026, 11, 2, 9, 30, tzinfo=UTC),
    "days_since_signup": 5,
    "first_successful_call_at": datetime(2026, 11, 3, 10, 5, tzinfo=UTC),
    "ttfhw_seconds": 88_500,
    "first_production_date": date(2026, 11, 20),
    "top_route": "/v1/orders/{id}",
    "last_call_date": date(2026, 11, 15),
    "last_call_at": datetime(2026, 11, 15, 17, 2, tzinfo=UTC),
    "days_since_last_call": 9,
    "lifetime_events": 125_000,
    "route": "/v1/webhooks",
    "feature_name": "Webhooks",
    "docs_url": "https://docs.example.com/webhooks",
    "first_called_date": date(2026, 11, 21),
    "month_start": date(2026, 11, 1),
    "monthly_quota": 30_000,
    "month_to_date_events": 25_600,
    "quota_used_pct": 85.3,
    "usage_date": date(2026, 11, 24),
    "events_429": 57,
    "events": 3_100,
    "incident_id": "inc-42",
    "incident_title": "Search returned 5xx",
    "affected_route": "/v1/search",
    "incident_started_at": datetime(2026, 11, 24, 10, 0, tzinfo=UTC),
    "incident_ended_at": datetime(2026, 11, 24, 10, 40, tzinfo=UTC),
    "affected_events": 14,
    "first_affected_at": datetime(2026, 11, 24, 10, 2, tzinfo=UTC),
    "last_affected_at": datetime(2026, 11, 24, 10, 31, tzinfo=UTC),
}


def find_member(
    conn: sa.Connection, spec: SegmentSpec, developer_id: str | None
) -> tuple[dict[str, Any], str]:
    """A member row of the segment (that developer's, else the first), or the sample member when
    the segment is empty or not built; returns the row and where it came from."""
    exists = conn.execute(
        sa.text("select to_regclass(:rel) is not null"), {"rel": spec.relation}
    ).scalar_one()
    if exists:
        row = conn.execute(
            sa.text(
                f"select to_jsonb(s) from {spec.relation} as s "
                "where cast(:dev as text) is null or s.developer_id = :dev "
                "order by member_key limit 1"
            ),
            {"dev": developer_id},
        ).scalar_one_or_none()
        if row is not None:
            return dict(row), "member"
    elif developer_id:
        require_segment_table(conn, spec)  # one line: run `onramp build` first
    if developer_id:
        raise SpecError(f"developer {developer_id} is not in segment {spec.name}")
    return dict(SAMPLE_MEMBER), "sample member"


def find_member_on_spark(
    spark: Any, spec: SegmentSpec, developer_id: str | None
) -> tuple[dict[str, Any], str]:
    """`find_member` where the segment was built on Spark: one row read there (as JSON, as
    PostgreSQL's to_jsonb gives it, nulls kept), rather than copying the whole segment to
    render one email."""
    import json

    from pyspark.sql import functions as F

    name = f"{spec.schema}.{spec.table or 'seg_' + spec.name}"
    if spark.catalog.tableExists(name):
        frame = spark.table(name)
        if developer_id:
            frame = frame.where(F.col("developer_id") == F.lit(developer_id))
        first = (
            frame.orderBy("member_key")
            .limit(1)
            .select(F.to_json(F.struct("*"), {"ignoreNullFields": "false"}).alias("row"))
            .collect()
        )
        if first:
            return json.loads(first[0]["row"]), "member"
    elif developer_id:
        raise SegmentMissing(f"segment table {name} not found on Spark: run `onramp build` first")
    if developer_id:
        raise SpecError(f"developer {developer_id} is not in segment {spec.name}")
    return dict(SAMPLE_MEMBER), "sample member"


def render_step(
    renderer: Renderer, spec: SegmentSpec, step: int, member: dict[str, Any]
) -> Rendered:
    """The email step `step` of the campaign would send to `member`."""
    seq = spec.sequence
    if seq is None:
        raise SpecError(f"segment {spec.name} has no campaign (only a list); nothing to preview")
    if not 1 <= step <= len(seq.steps):
        raise SpecError(f"segment {spec.name}: --step must be from 1 to {len(seq.steps)}")
    sample = {**SAMPLE_MEMBER, **member} if member.get("member_key") == "dev_sample" else member
    return renderer.render(
        seq.step(step).template, sample, "preview", spec.name, seq.category, step=step
    )
