-- crm_sync state. Written only by crm_sync/; safe to run before every push.
create schema if not exists crm_sync;

-- What HubSpot last confirmed, per pump and record: the properties exactly as sent (strings,
-- HubSpot property name -> value), the HubSpot record id, and the record the contact was last
-- associated with. The next push sends only rows whose properties differ from these.
create table if not exists crm_sync.confirmed (
    pump text not null,
    record_key text not null,
    properties jsonb not null,
    hubspot_id text,
    association_key text,
    confirmed_at timestamptz not null default now(),
    run_id bigint,
    primary key (pump, record_key)
) with (fillfactor = 90);  -- room for HOT updates: most pushes rewrite a few rows

-- Records HubSpot rejected (a 4xx for the record itself), with HubSpot's message. A rejected
-- record is not sent again until its values change; the rows around it are never held back.
create table if not exists crm_sync.rejected (
    pump text not null,
    record_key text not null,
    properties jsonb not null,
    status integer,
    message text not null,
    rejected_at timestamptz not null default now(),
    run_id bigint,
    primary key (pump, record_key)
);

-- One row per push (dry runs write nothing, so they are not here).
create table if not exists crm_sync.runs (
    run_id bigserial primary key,
    pump text not null,
    as_of date,
    status text not null,
    started_at timestamptz not null default now(),
    finished_at timestamptz,
    rows_total bigint,
    changed bigint,
    pushed bigint,
    rejected bigint,
    unconfirmed bigint,
    associated bigint,
    requests bigint,
    message text
);
