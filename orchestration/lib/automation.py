"""Whether schedules and sensors start running by themselves: off for the demo, on in production.

``ONRAMP_SCHEDULES=on`` (also 1/true/yes) turns on the daily build-and-sync schedule, the hourly
sync schedule and the landing-folder sensor when the code location loads; unset or anything else
leaves them stopped, so `onramp ui` on a laptop never emails anyone until someone flips a toggle.
"""

from __future__ import annotations

import datetime as dt
import os

import dagster as dg

from onramp.settings import Settings
from orchestration.lib.instance import PROVIDER_TAG, provider_account
from orchestration.lib.resources import run_config_for

SCHEDULES_ENV = "ONRAMP_SCHEDULES"


def automation_on() -> bool:
    return (os.environ.get(SCHEDULES_ENV) or "").strip().lower() in {"on", "1", "true", "yes"}


def default_schedule_status() -> dg.DefaultScheduleStatus:
    return dg.DefaultScheduleStatus.RUNNING if automation_on() else dg.DefaultScheduleStatus.STOPPED


def default_sensor_status() -> dg.DefaultSensorStatus:
    return dg.DefaultSensorStatus.RUNNING if automation_on() else dg.DefaultSensorStatus.STOPPED


def as_of_for_tick(scheduled: dt.datetime) -> dt.date:
    """A tick at any time of UTC day D works on as-of D-1, the last complete day."""
    if scheduled.tzinfo is not None:
        scheduled = scheduled.astimezone(dt.UTC)
    return scheduled.date() - dt.timedelta(days=1)


def sync_run_tags() -> dict[str, str]:
    """Tags of runs that push to the email provider (limited to one per account in dagster.yaml)."""
    return {PROVIDER_TAG: provider_account(Settings.from_env())}


def sync_run_request(scheduled: dt.datetime) -> dg.RunRequest:
    as_of = as_of_for_tick(scheduled)
    return dg.RunRequest(
        run_key=None,
        run_config=run_config_for(as_of),
        tags={**sync_run_tags(), "onramp/as_of": as_of.isoformat()},
    )
