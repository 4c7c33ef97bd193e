-- The landing zone. Created idempotently by onramp.raw_schema.ensure_raw_schema().
-- Rows are typed at load time (bad rows go to raw.load_rejects); dbt staging dedupes and cleans.
create schema if not exists raw;

create table if not exists raw.load_batches (
    batch_id bigserial primary key,
    kind text not null,                -- api_events | developers | incidents | endpoints
    path text not null,
    checksum text not null,            -- sha256 of the file bytes
    format text not null,              -- jsonl | csv | moesif | combined
    status text not null default 'loading',  -- loading | loaded | partial (end held back) | failed
    rows_loaded bigint not null default 0,
    rows_duplicate bigint not null default 0,
    rows_rejected bigint not null default 0,
    started_at timestamptz not null default now(),
    finished_at timestamptz,
    seconds double precision,
    error text                         -- why a failed batch failed
);

create table if not exists raw.load_rejects (
    batch_id bigint not null references raw.load_batches (batch_id),
    line_number bigint not null,
    reason text not null,
    raw_text text
);
-- No primary key: one line can yield two rejects (two elements of a minified JSON array).

create table if not exists raw.api_events (
    event_id text not null,
    occurred_at timestamptz not null,
    developer_id text not null,
    company_id text,
    method text,
    path text,
    status_code integer,
    latency_ms double precision,
    request_bytes bigint,
    response_bytes bigint,
    environment text,
    api_key_id text,
    user_agent text,
    ip text,
    extras jsonb,
    batch_id bigint not null
);

create table if not exists raw.developers (
    developer_id text not null,
    email text,
    name text,
    company_id text,
    company_name text,
    role text,
    signed_up_at timestamptz,
    plan text,
    monthly_quota bigint,
    timezone text,
    marketing_opt_in boolean,
    updated_at timestamptz,            -- when the source changed the row, if the file says
    extras jsonb,
    batch_id bigint not null,
    line_number bigint not null
);

create table if not exists raw.incidents (
    incident_id text not null,
    title text,
    started_at timestamptz not null,
    ended_at timestamptz,
    affected_route text not null,
    extras jsonb,
    batch_id bigint not null,
    line_number bigint not null
);

create table if not exists raw.endpoints (
    route text not null,
    feature_name text,
    promoted boolean not null default false,
    docs_url text,
    extras jsonb,
    batch_id bigint not null,
    line_number bigint not null
);

-- Indexes, created only when missing. Not `create index if not exists`: it takes a SHARE lock on
-- the table even when the index exists, which cancels a running autovacuum; a cancelled BRIN
-- summarization leaves ranges that match every scan until the index is rebuilt (seen on
-- PostgreSQL 16.2), so each incremental dbt run would read every event again.
do $$
begin
    if to_regclass('raw.load_batches_kind_checksum') is null then
        create unique index load_batches_kind_checksum
            on raw.load_batches (kind, checksum) where status = 'loaded';
    end if;
    if to_regclass('raw.load_rejects_batch') is null then
        create index load_rejects_batch on raw.load_rejects (batch_id, line_number);
    end if;
    if to_regclass('raw.api_events_event_id') is null then
        create unique index api_events_event_id on raw.api_events (event_id);
    end if;
    -- dbt reads events by time window (incremental days, incident ranges): BRIN is tiny for
    -- append order and never slows COPY down
    if to_regclass('raw.api_events_occurred_at_brin') is null then
        create index api_events_occurred_at_brin on raw.api_events using brin (occurred_at);
    end if;
end
$$;

-- Upgrades of warehouses created by an earlier version. Checked first, so the usual run takes
-- no ALTER TABLE lock (this file runs before every load).
do $$
declare
    wanted record;
begin
    if exists (
        select 1 from pg_constraint
        where conname = 'load_rejects_pkey' and conrelid = 'raw.load_rejects'::regclass
    ) then
        alter table raw.load_rejects drop constraint load_rejects_pkey;
    end if;
    -- columns added since: (table, column, type)
    for wanted in
        select * from (
            values
            ('incidents', 'extras', 'jsonb'),
            ('endpoints', 'extras', 'jsonb'),
            ('developers', 'updated_at', 'timestamptz'),
            ('load_batches', 'error', 'text')
        ) as added (table_name, column_name, data_type)
    loop
        if not exists (
            select 1 from information_schema.columns as c
            where
                c.table_schema = 'raw'
                and c.table_name = wanted.table_name
                and c.column_name = wanted.column_name
        ) then
            -- no format(): the driver this file goes through reads its placeholders as its own
            execute 'alter table raw.' || quote_ident(wanted.table_name)
                || ' add column ' || quote_ident(wanted.column_name) || ' ' || wanted.data_type;
        end if;
    end loop;
end
$$;
