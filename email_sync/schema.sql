-- email_sync state. Written only by email_sync/ (docs/layout.md); safe to run before every sync.
create schema if not exists email_sync;

-- One row per (segment, member) ever seen. exited_at is null while the member is in the segment.
-- list_status tracks the SendGrid list mirror so a failed list call is picked up by the next run:
-- pending_add | synced | pending_remove | removed | skipped (no consent / invalid address)
-- | pending_import (upserted, its import job not finished yet: see contact_imports)
-- | import_failed (import jobs errored too often; a new entry or consent change queues it again).
create table if not exists email_sync.segment_membership (
    segment text not null,
    member_key text not null,
    developer_id text,
    email text,
    entered_at timestamptz not null,
    exited_at timestamptz,
    entered_as_of date,
    exited_as_of date,
    entry_count integer not null default 1,
    list_status text,
    list_synced_at timestamptz,
    primary key (segment, member_key)
) with (fillfactor = 90);  -- room for HOT updates when members exit

-- The message ledger: one row per (segment or campaign, step, member, period), ever.
-- status: pending (decided, not yet confirmed) | sent | failed | suppressed | skipped | capped
--         (held back by the frequency cap, retried on a later day) | held_out (holdout group,
--         never emailed) | sent_unconfirmed (handed to a provider that cannot be asked
--         afterwards, then a crash). step: the 1-based step number as text.
create table if not exists email_sync.messages (
    message_id text primary key,
    segment text not null,
    step text not null,
    member_key text not null,
    period text not null,
    developer_id text,
    email text,
    template text,
    kind text,
    priority integer not null default 0,
    bypass_cap boolean not null default false,
    payload jsonb not null default '{}'::jsonb,
    status text not null,
    reason text,
    attempts integer not null default 0,
    provider text,
    provider_message_id text,
    run_id bigint,
    created_at timestamptz not null default now(),
    attempted_at timestamptz,
    sent_at timestamptz,
    updated_at timestamptz not null default now(),
    constraint messages_once unique (segment, step, member_key, period)
);
create index if not exists messages_by_run on email_sync.messages (run_id, status);
create index if not exists messages_by_developer on email_sync.messages (developer_id, sent_at);

-- Campaigns (sequences). A member's progress lives beside its membership so deciding what is due
-- reads one row per member plus the few ledger rows still open: sequence_period is the ledger
-- period of the sequence this entry runs (null: not enrolled, e.g. a re-entry the rule refuses),
-- sequence_step the last step decided, goal_reached_as_of the day the goal was reached.
alter table email_sync.segment_membership
    add column if not exists previous_exited_as_of date,
    add column if not exists sequence_period text,
    add column if not exists sequence_started_as_of date,
    add column if not exists sequence_step integer not null default 0,
    add column if not exists goal_reached_as_of date,
    -- `enters` goals: the developer was already in the goal segment when the run started, so
    -- the goal is not reached by being there (a paid production developer still gets the
    -- production campaign; only an upgrade during it reaches its goal)
    add column if not exists goal_met_at_entry boolean;
-- deferrals: how many runs the frequency cap held this row back (status `capped` while it waits,
-- `pending` again on the next run); held_out rows are the control group and are never sent.
alter table email_sync.messages add column if not exists deferrals integer not null default 0;
-- The rows still open (waiting, deferred, to retry) per segment: what deciding the next step,
-- reconciling and retrying look up. It replaces a full (segment, status) index, which every
-- ledger insert had to maintain for rows nobody looks up again.
create index if not exists messages_open on email_sync.messages (segment, member_key)
    where status in ('pending', 'capped', 'failed');
drop index if exists email_sync.messages_by_status;

-- One row per sync run with its counts (dry runs write nothing, so they are not here).
create table if not exists email_sync.sync_runs (
    run_id bigserial primary key,
    segment text not null,
    as_of date,
    provider text,
    status text not null,
    started_at timestamptz not null default now(),
    finished_at timestamptz,
    members bigint,
    entered bigint,
    exited bigint,
    sent bigint,
    suppressed bigint,
    failed bigint,
    capped bigint,
    skipped bigint,
    unconfirmed bigint,
    list_added bigint,
    list_removed bigint,
    message text
);

-- Addresses never to send to: the provider's suppression lists, unsubscribes, later the webhook.
create table if not exists email_sync.suppressions (
    email text primary key,
    reason text not null,
    source text not null,
    created_at timestamptz not null default now()
);
-- scope: 'all' (nothing is sent) or one kind such as 'marketing' (transactional mail still goes).
alter table email_sync.suppressions add column if not exists scope text not null default 'all';

-- Incremental SendGrid suppression pull (email_sync.feedback): the newest `created` seen per list.
create table if not exists email_sync.suppression_pulls (
    provider text not null,
    kind text not null,
    pulled_until bigint not null,
    pulled_at timestamptz not null default now(),
    primary key (provider, kind)
);

-- SendGrid contact import jobs of the list mirror. A job not finished within the short wait of
-- the run that started it (ONRAMP_IMPORT_WAIT_S) stays `pending` here, its members
-- `pending_import`, until a later run confirms it: completed -> synced, errored/failed -> back to
-- pending_add (with the reason) for a bounded retry.
-- status: pending | completed | errored | failed | abandoned (never finished)
create table if not exists email_sync.contact_imports (
    job_id text primary key,
    segment text not null,
    emails text[] not null,
    status text not null,
    reason text,
    requested_at timestamptz not null default now(),
    confirmed_at timestamptz
);
create index if not exists contact_imports_pending
    on email_sync.contact_imports (segment) where status = 'pending';
