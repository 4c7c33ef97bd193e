"""What the report reads from the marts, as plain Python rows (no DataFrame library needed).

Every query stops at the as-of day, so a report for an earlier day drawn from a later build shows
what was known then as far as the marts allow (the lift marts are as of their last build).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

import sqlalchemy as sa

from onramp.errors import OnrampError

MARTS = "marts"
# Marts the report cannot do without: built by every `onramp build`.
REQUIRED = ("fct_signup_cohorts_weekly", "fct_stage_counts_daily", "fct_stage_transitions_daily",
            "dim_developers")  # fmt: skip
LIFT = "fct_campaign_lift"
# Engagement per campaign step (delivered / opened / clicked / unsubscribed), from the SendGrid
# Event Webhook; drawn when the relation exists.
ENGAGEMENT = "fct_email_engagement_daily"
ENGAGEMENT_MEASURES = ("delivered", "unique_opens", "unique_clicks", "unsubscribes")

COHORT_WEEKS = 12
TIMELINE_DAYS = 60


class ReportError(OnrampError):
    """The report cannot be drawn (marts missing or empty); one line says what to run."""


@dataclass
class ReportData:
    """Everything the charts draw, read from the marts for one as-of day."""

    as_of: date
    cohorts: list[dict[str, Any]] = field(default_factory=list)
    stage_counts: list[dict[str, Any]] = field(default_factory=list)
    transitions: list[dict[str, Any]] = field(default_factory=list)
    ttfhw_hours: list[float] = field(default_factory=list)
    lift: list[dict[str, Any]] | None = None  # None: the lift mart is not built
    engagement: list[dict[str, Any]] | None = None  # None: no engagement mart yet
    last_built_day: date | None = None


def _exists(conn: sa.Connection, table: str) -> bool:
    """A table or view of the marts schema exists (SQLAlchemy's inspector: any engine)."""
    return sa.inspect(conn).has_table(table, schema=MARTS)


def _rows(conn: sa.Connection, sql: str, **params: Any) -> list[dict[str, Any]]:
    return [dict(r) for r in conn.execute(sa.text(sql), params).mappings()]


def last_built_day(engine: sa.Engine) -> date:
    """The last day the funnel marts hold: the report's as-of day when none is given."""
    with engine.connect() as conn:
        _require(conn)
        day = conn.execute(
            sa.text(f"select max(stage_date) from {MARTS}.fct_stage_counts_daily")
        ).scalar_one()
    if day is None:
        raise ReportError("the funnel marts are empty: load data and run `onramp build` first")
    return day


def _require(conn: sa.Connection) -> None:
    missing = [t for t in REQUIRED if not _exists(conn, t)]
    if missing:
        raise ReportError(
            f"{MARTS}.{missing[0]} does not exist: run `onramp build` before `onramp report`"
        )


def load_report_data(engine: sa.Engine, as_of: date) -> ReportData:
    """Everything the charts draw, for the as-of day."""
    data = ReportData(as_of=as_of)
    with engine.connect() as conn:
        _require(conn)
        data.last_built_day = conn.execute(
            sa.text(f"select max(stage_date) from {MARTS}.fct_stage_counts_daily")
        ).scalar_one()
        first_week = as_of - timedelta(days=7 * COHORT_WEEKS)
        data.cohorts = _rows(
            conn,
            "select cohort_week, signups, share_first_call_30d, share_sandbox_30d,"
            " share_production_30d, is_complete_30d"
            f" from {MARTS}.fct_signup_cohorts_weekly"
            " where cohort_week <= :as_of and cohort_week > :first order by cohort_week",
            as_of=as_of,
            first=first_week,
        )
        first_day = as_of - timedelta(days=TIMELINE_DAYS)
        data.stage_counts = _rows(
            conn,
            f"select stage_date, stage, developers from {MARTS}.fct_stage_counts_daily"
            " where stage_date <= :as_of and stage_date > :first order by stage_date, stage",
            as_of=as_of,
            first=first_day,
        )
        data.transitions = _rows(
            conn,
            "select stage_date, from_stage, to_stage, developers"
            f" from {MARTS}.fct_stage_transitions_daily"
            " where stage_date <= :as_of and stage_date > :first"
            " order by stage_date, from_stage, to_stage",
            as_of=as_of,
            first=first_day,
        )
        data.ttfhw_hours = [
            float(r["hours"])
            for r in _rows(
                conn,
                "select ttfhw_seconds / 3600.0 as hours from"
                f" {MARTS}.dim_developers where ttfhw_seconds >= 0"
                " and first_successful_call_at < :end",
                end=as_of + timedelta(days=1),
            )
        ]
        if _exists(conn, LIFT):
            data.lift = _rows(
                conn,
                "select campaign, goal_type, goal_segment, treated_members, held_out_members,"
                " treated_share, held_out_share, share_difference, difference_lower_95,"
                " difference_upper_95, treated_median_days_to_goal,"
                f" held_out_median_days_to_goal, is_too_small from {MARTS}.{LIFT}"
                " order by campaign",
            )
        if _exists(conn, ENGAGEMENT):
            sums = ", ".join(f"sum({m}) as {m}" for m in ENGAGEMENT_MEASURES)
            data.engagement = _rows(
                conn,
                f"select campaign, step, sum(sent) as sent, {sums}"
                f" from {MARTS}.{ENGAGEMENT} where event_date <= :as_of"
                " group by campaign, step order by campaign, step",
                as_of=as_of,
            )
    return data
