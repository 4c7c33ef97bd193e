"""What a campaign's members are due today, decided set-based in the warehouse.

Runs inside the decision transaction, after the membership diff, with `_entered` / `_exited`:

1. `enroll`: who entered starts the sequence from step 1 (counted from today), if the re-entry
   rule allows it; otherwise the entry is recorded but no sequence runs (`sequence_period` null).
2. `end_sequences`: leaving the segment ends a sequence (and is its goal when the goal is
   `leaves_segment`); being in the goal segment (`enters`) reaches the goal and ends it too.
3. (the ledger re-adopts rows the cap deferred or that failed, and skips those whose sequence
   has ended: a step not sent by then is never sent)
4. `decide_due_steps` (who is due which step, into `_due`) and `record_due_steps` (the ledger
   rows): member M gets step k on the first as-of day on or after the day M entered +
   `after_days(k)`, once step k-1 is settled (no row of M still open). A holdout member gets a
   `held_out` row instead of an email, so the control group moves through the same steps on
   the same days.

Progress is kept on the membership row (`sequence_step`), so the query reads one row per
member plus the few open ledger rows (a partial index), never the whole ledger history.
"""

from __future__ import annotations

import hashlib
from datetime import date

import sqlalchemy as sa

from email_sync.guardrails import INVALID
from email_sync.specs import SegmentSpec

HOLDOUT = "held_out"
# SQL twin of in_holdout: the first 32 bits of md5(campaign:developer) as a fraction of 2^32.
HOLDOUT_SQL = (
    "(('x' || substr(md5(:seg || ':' || {dev}), 1, 8))::bit(32)::bigint "
    "< floor(cast(:holdout as float8) * 4294967296))"
)


# Ledger ids that grow with the run (a run's rows land together at the right edge of the primary
# key instead of at random places in a large index) and stay unguessable (a random tail).
MESSAGE_ID_SQL = (
    "lpad(to_hex(greatest(cast(:run as bigint), 0)), 10, '0') || '-' "
    "|| replace(gen_random_uuid()::text, '-', '')"
)


def holdout_bucket(campaign: str, developer_id: str) -> float:
    """Where a developer falls in [0, 1) for a campaign: the same on every run and re-entry."""
    digest = hashlib.md5(f"{campaign}:{developer_id}".encode()).hexdigest()  # noqa: S324
    return int(digest[:8], 16) / 2**32


def in_holdout(campaign: str, developer_id: str, share: float) -> bool:
    """Is this developer in the campaign's control group (never emailed by it)?"""
    return holdout_bucket(campaign, developer_id) < share


def open_row_sql(alias: str = "o") -> str:
    """A ledger row that is not settled yet: decided and waiting, deferred, or to be retried."""
    return (
        f"({alias}.status in ('pending', 'capped') or ({alias}.status = 'failed' "
        f"and {alias}.reason is distinct from '{INVALID}' and {alias}.attempts < :max_attempts))"
    )


def skip_held(conn: sa.Connection, spec: SegmentSpec, as_of: date) -> None:
    """Members recorded today but held out of `_entered` by the first-sync guard (a large first
    sync, a rename, a re-key) start no run: marked as started with no period, so neither today's
    enrolment nor a later one (which enrols members from before sequences existed) emails them."""
    conn.execute(
        sa.text(
            """
            update email_sync.segment_membership as m set
                sequence_started_as_of = :as_of, sequence_period = null, sequence_step = 0
            where m.segment = :seg and m.entered_as_of = :as_of and m.exited_at is null
              and m.sequence_started_as_of is null
              and not exists (select 1 from _entered as e where e.member_key = m.member_key)
            """
        ),
        {"seg": spec.name, "as_of": as_of},
    )


def enroll(conn: sa.Connection, spec: SegmentSpec, as_of: date) -> int:
    """Start the sequence for this run's entries the re-entry rule allows (after
    `write_membership`, which kept the previous exit day in `previous_exited_as_of`). Members
    from before sequences existed are enrolled too, unless they already had the entry email.
    Returns how many entries the re-entry rule refused (they are counted as skipped)."""
    seq = spec.sequence
    assert seq is not None
    conn.execute(
        sa.text(
            """
            update email_sync.segment_membership as m set
                sequence_period = case
                    when cast(:reentry_days as integer) is null then
                        case when m.entry_count = 1 then 'once' end
                    when m.previous_exited_as_of is null
                      or m.previous_exited_as_of <= cast(:as_of as date) - :reentry_days
                    then 'entry-' || m.entry_count
                end,
                sequence_started_as_of = :as_of,
                sequence_step = 0,
                goal_reached_as_of = null,
                goal_met_at_entry = null
            from _entered as e
            where m.segment = :seg and m.member_key = e.member_key
            """
        ),
        {"seg": spec.name, "as_of": as_of, "reentry_days": seq.reentry_after_days},
    )
    conn.execute(
        sa.text(
            """
            update email_sync.segment_membership as m set
                sequence_period = case
                    when cast(:reentry_days as integer) is null then 'once'
                    else 'entry-' || m.entry_count
                end,
                sequence_started_as_of = :as_of
            where m.segment = :seg and m.exited_at is null and m.sequence_started_as_of is null
              and not exists (
                  select 1 from email_sync.messages as g
                  where g.segment = m.segment and g.member_key = m.member_key and g.step = 'entry'
              )
            """
        ),
        {"seg": spec.name, "as_of": as_of, "reentry_days": seq.reentry_after_days},
    )
    return conn.execute(
        sa.text(
            """
            select count(*) from _entered as e
            join email_sync.segment_membership as m
              on m.segment = :seg and m.member_key = e.member_key
            where m.sequence_period is null
            """
        ),
        {"seg": spec.name},
    ).scalar_one()


def end_sequences(conn: sa.Connection, spec: SegmentSpec, as_of: date) -> None:
    """Record reaching the goal: leaving the segment when that is the goal, or entering the
    goal segment during the run (checked for members still in, and for those who left today,
    since moving to production leaves sandbox and reaches its goal on the same day). A developer
    already in the goal segment when the run started has not entered it: that run goes on."""
    seq = spec.sequence
    assert seq is not None
    params = {"seg": spec.name, "as_of": as_of}
    if seq.goal_leaves_segment:
        conn.execute(
            sa.text(
                """
                update email_sync.segment_membership as m set goal_reached_as_of = :as_of
                from _exited as x
                where m.segment = :seg and m.member_key = x.member_key
                  and m.sequence_period is not null and m.goal_reached_as_of is null
                """
            ),
            params,
        )
        return
    assert seq.goal_relation, f"segment {spec.name}: goal segment not resolved"
    # `enters` is a change: a run that starts with the developer already in the goal segment
    # runs to its end (remembered once, on the run's first day)
    conn.execute(
        sa.text(
            f"""
            update email_sync.segment_membership as m set goal_met_at_entry = exists (
                select 1 from {seq.goal_relation} as goal
                where goal.developer_id = m.developer_id
            )
            where m.segment = :seg and m.sequence_period is not null and m.exited_at is null
              and m.sequence_step = 0 and m.goal_met_at_entry is null
            """
        ),
        params,
    )
    conn.execute(
        sa.text(
            f"""
            update email_sync.segment_membership as m set goal_reached_as_of = :as_of
            where m.segment = :seg and m.sequence_period is not null
              and m.goal_reached_as_of is null and m.goal_met_at_entry is false
              and (m.exited_at is null or m.exited_as_of = :as_of)
              and exists (
                  select 1 from {seq.goal_relation} as goal
                  where goal.developer_id = m.developer_id
              )
            """
        ),
        params,
    )


def skip_ended(conn: sa.Connection, spec: SegmentSpec, run_id: int) -> int:
    """This run's adopted rows whose sequence has ended (the member left, reached the goal, or
    the row belongs to an earlier entry) are never sent: `skipped` with the reason."""
    return conn.execute(
        sa.text(
            """
            update email_sync.messages as g set status = 'skipped',
                reason = case
                    when m.goal_reached_as_of is not null and g.period = m.sequence_period
                        then 'reached the goal'
                    else 'no longer in the segment'
                end,
                updated_at = now()
            from email_sync.segment_membership as m
            where g.run_id = :run and g.status = 'pending' and g.attempted_at is null
              and m.segment = g.segment and m.member_key = g.member_key
              and (m.exited_at is not null or m.goal_reached_as_of is not null
                   or m.sequence_period is distinct from g.period)
            """
        ),
        {"run": run_id},
    ).rowcount


def decide_due_steps(conn: sa.Connection, spec: SegmentSpec, as_of: date, max_attempts: int) -> int:
    """Who is due which step today, in the temp table `_due` (member_key, developer_id, period,
    step_no, template, held_out): one row per active member whose next step's day has come and
    whose previous step is settled. Reads one membership row per member and the open ledger
    rows only. Returns how many."""
    seq = spec.sequence
    assert seq is not None
    conn.execute(
        sa.text(
            f"""
            create temp table _due on commit drop as
            with steps as (
                select *
                from unnest(cast(:numbers as integer[]), cast(:afters as integer[]),
                            cast(:templates as text[])) as t(step_no, after_days, template)
            )
            select m.member_key, m.developer_id, m.sequence_period, s.step_no, s.template,
                   coalesce({HOLDOUT_SQL.format(dev="m.developer_id")}, false) as held_out
            from email_sync.segment_membership as m
            join steps as s on s.step_no = m.sequence_step + 1
            where m.segment = :seg and m.exited_at is null
              and m.sequence_period is not null and m.goal_reached_as_of is null
              and m.sequence_started_as_of + s.after_days <= cast(:as_of as date)
              and not exists (
                  select 1 from email_sync.messages as o
                  where o.segment = :seg and o.member_key = m.member_key
                    and o.status in ('pending', 'capped', 'failed') and {open_row_sql("o")}
              )
            """
        ),
        {
            "seg": spec.name,
            "as_of": as_of,
            "numbers": [s.number for s in seq.steps],
            "afters": [s.after_days for s in seq.steps],
            "templates": [s.template for s in seq.steps],
            "holdout": seq.holdout_share,
            "max_attempts": max_attempts,
        },
    )
    return conn.execute(sa.text("select count(*) from _due")).scalar_one()


def record_due_steps(conn: sa.Connection, spec: SegmentSpec, run_id: int) -> tuple[int, int]:
    """Write `_due` to the ledger (`pending`, or `held_out` for the control group, with the
    member's current segment row as the payload to render) and move each member's progress on.
    Returns (pending, held_out) counts of rows written."""
    seq = spec.sequence
    assert seq is not None
    rows = conn.execute(
        sa.text(
            f"""
            with inserted as (
                insert into email_sync.messages (
                    message_id, segment, step, member_key, period, developer_id, email,
                    template, kind, priority, bypass_cap, payload, status, reason, run_id
                )
                select {MESSAGE_ID_SQL}, :seg, d.step_no::text, d.member_key,
                       d.sequence_period, s.developer_id, lower(btrim(s.email)), d.template,
                       :kind, :priority, :bypass,
                       case when d.held_out then '{{}}'::jsonb else to_jsonb(s) end,
                       case when d.held_out then '{HOLDOUT}' else 'pending' end,
                       case when d.held_out then 'holdout group' end,
                       :run
                from _due as d
                join {spec.relation} as s on s.member_key = d.member_key
                -- in key order: each index page is visited once, not once per row at random
                order by d.step_no, d.member_key
                on conflict on constraint messages_once do nothing
                returning status
            ),
            advanced as (
                -- a step already in the ledger (a conflict) is decided too: move past it
                update email_sync.segment_membership as m set sequence_step = d.step_no
                from _due as d
                where m.segment = :seg and m.member_key = d.member_key
                returning 1
            )
            select
                count(*) filter (where status = 'pending') as pending,
                count(*) filter (where status = '{HOLDOUT}') as held_out,
                (select count(*) from advanced) as advanced
            from inserted
            """
        ),
        {
            "seg": spec.name,
            "run": run_id,
            "kind": seq.category,
            "priority": seq.priority,
            "bypass": seq.bypass_frequency_cap,
        },
    ).one()
    return int(rows.pending), int(rows.held_out)


def count_deferrals(conn: sa.Connection, run_id: int) -> int:
    """After the frequency cap: each row it held back this run counts one deferral."""
    return conn.execute(
        sa.text(
            "update email_sync.messages set deferrals = deferrals + 1 "
            "where run_id = :run and status = 'capped'"
        ),
        {"run": run_id},
    ).rowcount
