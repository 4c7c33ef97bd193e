"""The Event Webhook's events in Dagster: an observable source asset and a sensor that rebuilds
the engagement models after new events.

`onramp webhook` writes raw.email_events outside Dagster (it must answer SendGrid within seconds,
whatever Dagster is doing). Dagster sees the table as the observable source asset
``sendgrid_email_events`` (the key the dbt translator gives the `sendgrid.email_events` source, so
the dbt staging model hangs below it). Its data version is the event count and the newest
`received_at`. The ``email_events_arrived`` sensor observes the same version every few minutes
and, when it changed, records the observation and requests a run of everything downstream
(staging view + fct_email_engagement_daily), so the marts follow the events.
"""

# No `from __future__ import annotations`: Dagster reads the context annotations at definition time.
import dagster as dg
import sqlalchemy as sa

from onramp.as_of import to_partition_key, yesterday_utc
from orchestration.lib.automation import default_sensor_status
from orchestration.lib.dbt_translator import source_asset_key
from orchestration.lib.resources import OnrampResource, run_config_for

EVENTS_KEY = source_asset_key("sendgrid", "email_events")
ENGAGEMENT_SELECTION = dg.AssetSelection.assets(EVENTS_KEY).downstream(include_self=False)


def events_version(engine: sa.Engine) -> tuple[str, int]:
    """(data version, event count) of raw.email_events, creating the tables when missing."""
    from email_sync.feedback.schema import ensure_feedback_schema

    with engine.begin() as conn:
        ensure_feedback_schema(conn)
        count, newest = conn.execute(
            sa.text("select count(*), max(received_at) from raw.email_events")
        ).one()
    return f"{count}:{newest.isoformat() if newest else '-'}", int(count)


@dg.observable_source_asset(
    key=EVENTS_KEY,
    group_name="raw",
    description=(
        "SendGrid Event Webhook events stored by `onramp webhook` in raw.email_events "
        "(one row per sg_event_id). Observed by the email_events_arrived sensor."
    ),
)
def sendgrid_email_events(onramp: OnrampResource) -> dg.DataVersion:
    """The events table's version (count and newest arrival): a change marks downstream stale."""
    version, _ = events_version(onramp.engine())
    return dg.DataVersion(version)


engagement_refresh_job = dg.define_asset_job(
    "engagement_refresh",
    selection=ENGAGEMENT_SELECTION,
    description="Rebuild the SendGrid staging view and the engagement marts after new events.",
)


@dg.sensor(
    name="email_events_arrived",
    job=engagement_refresh_job,
    minimum_interval_seconds=300,
    default_status=default_sensor_status(),
    description="Rebuilds the engagement marts when raw.email_events has new events.",
)
def email_events_arrived(
    context: dg.SensorEvaluationContext, onramp: OnrampResource
) -> dg.SensorResult | dg.SkipReason:
    """Observe raw.email_events and rebuild the engagement models when it changed."""
    version, count = events_version(onramp.engine())
    if context.cursor == version:
        return dg.SkipReason("no new email events")
    observation = dg.AssetObservation(
        asset_key=EVENTS_KEY, metadata={"events": count}, tags={"dagster/data_version": version}
    )
    request = dg.RunRequest(
        run_key=f"email-events-{version}",
        run_config=run_config_for(),
        # The engagement models are daily partitioned like every dbt asset: rebuild the latest day.
        partition_key=to_partition_key(yesterday_utc()),
        tags={"onramp/trigger": "email_events_arrived"},
    )
    return dg.SensorResult(run_requests=[request], asset_events=[observation], cursor=version)


defs = dg.Definitions(
    assets=[sendgrid_email_events],
    jobs=[engagement_refresh_job],
    sensors=[email_events_arrived],
)
