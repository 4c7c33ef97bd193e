"""Whether schedules and sensors start running by themselves: off for the demo, on in production.

``ONRAMP_SCHEDULES=on`` (also 1/true/yes) turns on the daily build-and-sync schedule, the hourly
sync schedule and the landing-folder sensor when the code location loads; unset or anything else
leaves them stopped, so `onramp ui` on a laptop never emails anyone until someone flips a toggle.
"""

from __future__ import annotations

import os

import dagster as dg

from onramp.settings import Settings
from orchestration.lib.instance import PROVIDER_TAG, provider_account

SCHEDULES_ENV = "ONRAMP_SCHEDULES"


def automation_on() -> bool:
    """ONRAMP_SCHEDULES asks for schedules and sensors to run."""
    return (os.environ.get(SCHEDULES_ENV) or "").strip().lower() in {"on", "1", "true", "yes"}


def default_schedule_status() -> dg.DefaultScheduleStatus:
    """RUNNING in production (ONRAMP_SCHEDULES=on), STOPPED otherwise."""
    return dg.DefaultScheduleStatus.RUNNING if automation_on() else dg.DefaultScheduleStatus.STOPPED


def default_sensor_status() -> dg.DefaultSensorStatus:
    """RUNNING in production (ONRAMP_SCHEDULES=on), STOPPED otherwise."""
    return dg.DefaultSensorStatus.RUNNING if automation_on() else dg.DefaultSensorStatus.STOPPED


def sync_run_tags() -> dict[str, str]:
    """Tags of runs that push to the email provider (limited to one per account in dagster.yaml)."""
    return {PROVIDER_TAG: provider_account(Settings.from_env())}
