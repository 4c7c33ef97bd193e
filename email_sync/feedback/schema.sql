-- Feedback loop tables: raw Event Webhook events and the events that could not be read (the
-- suppression scope and pull state are email_sync's own, in email_sync/schema.sql). Idempotent;
-- run at receiver start and before dbt reads raw.email_events.
create schema if not exists raw;

-- One row per SendGrid event, ever: sg_event_id is SendGrid's dedupe key, so a redelivered
-- batch adds nothing. The whole event is kept in `payload`; the columns are what models need.
create table if not exists raw.email_events (
    sg_event_id text primary key,
    event text not null,
    email text not null,
    occurred_at timestamptz not null,
    sg_message_id text,
    onramp_message_id text,
    onramp_campaign text,
    onramp_step text,
    category jsonb,
    reason text,
    status text,
    bounce_type text,
    url text,
    asm_group_id bigint,
    payload jsonb not null,
    received_at timestamptz not null default now()
);
create index if not exists email_events_received on raw.email_events (received_at);
create index if not exists email_events_message on raw.email_events (onramp_message_id);

-- Events a batch carried that could not be read: kept with the reason, never silently dropped.
-- event_hash makes a redelivered bad event land once.
create table if not exists raw.email_event_rejects (
    event_hash text primary key,
    reason text not null,
    event_text text not null,
    received_at timestamptz not null default now()
);
