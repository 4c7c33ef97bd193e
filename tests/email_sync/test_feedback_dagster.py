"""The events in Dagster: the sensor observes raw.email_events and its run rebuilds the
engagement mart (real dbt through dagster-dbt, in process)."""

from __future__ import annotations

import secrets

import dagster as dg
import orjson
import sqlalchemy as sa

from email_sync.feedback.events import store_batch
from email_sync.feedback.schema import ensure_feedback_schema_on


def events(n: int, event: str = "delivered") -> bytes:
    return orjson.dumps(
        [
            {
                "email": f"d{i}@example.com",
                "timestamp": 1_764_000_000,
                "event": event,
                "sg_event_id": secrets.token_urlsafe(12),
                "onramp_message_id": f"m{i}",
                "onramp_segment": "new_signups",
            }
            for i in range(n)
        ]
    )


def test_sensor_observes_events_and_rebuilds_engagement(engine):
    from orchestration.defs import dbt as dbt_area
    from orchestration.defs import feedback as feedback_area
    from orchestration.lib.resources import RESOURCE_KEY, OnrampResource, run_config_for

    ensure_feedback_schema_on(engine)
    with engine.begin() as conn:
        conn.execute(sa.text("truncate raw.email_events"))
        store_batch(conn, events(3, "processed"))
    defs = dg.Definitions.merge(
        dbt_area.defs,
        feedback_area.defs,
        dg.Definitions(resources={RESOURCE_KEY: OnrampResource()}),
    )
    job = defs.resolve_job_def("engagement_refresh")
    selected = {k.to_user_string() for k in job.asset_layer.selected_asset_keys}
    assert {"stg_sendgrid__email_events", "fct_email_engagement_daily"} <= selected
    assert "stg_raw__api_events" not in selected

    sensor = defs.resolve_sensor_def("email_events_arrived")
    with dg.build_sensor_context(resources={RESOURCE_KEY: OnrampResource()}) as context:
        first = sensor(context)
    assert len(first.run_requests) == 1 and first.asset_events
    with dg.build_sensor_context(
        cursor=first.cursor, resources={RESOURCE_KEY: OnrampResource()}
    ) as context:
        assert isinstance(sensor(context), dg.SkipReason)

    result = job.execute_in_process(
        run_config=run_config_for(),
        instance=dg.DagsterInstance.ephemeral(),
        partition_key=first.run_requests[0].partition_key,
    )
    assert result.success
    with engine.connect() as conn:
        assert (
            conn.execute(
                sa.text("select sum(sent) from marts.fct_email_engagement_daily")
            ).scalar_one()
            == 3
        )

    with engine.begin() as conn:
        store_batch(conn, events(2, "open"))
    with dg.build_sensor_context(
        cursor=first.cursor, resources={RESOURCE_KEY: OnrampResource()}
    ) as context:
        assert len(sensor(context).run_requests) == 1  # new events: rebuild again
