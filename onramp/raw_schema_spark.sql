-- The landing zone on Spark: the same tables and columns as raw_schema.sql, stored as Parquet.
-- Spark has no sequences, unique indexes or jsonb: batch ids come from the loader, event_id
-- uniqueness is kept by the loader, extras is JSON text. api_events is partitioned by the UTC day
-- of occurred_at (event_date), so a daily build reads only the days it rebuilds.
-- Statements are separated by ';' at the end of a line (Spark SQL takes one at a time).
create database if not exists raw;

create table if not exists raw.load_batches (
    batch_id bigint,
    kind string,
    path string,
    checksum string,
    format string,
    status string,
    rows_loaded bigint,
    rows_duplicate bigint,
    rows_rejected bigint,
    started_at timestamp,
    finished_at timestamp,
    seconds double,
    error string
) using parquet;

create table if not exists raw.load_rejects (
    batch_id bigint,
    line_number bigint,
    reason string,
    raw_text string
) using parquet;

create table if not exists raw.api_events (
    event_id string,
    occurred_at timestamp,
    developer_id string,
    company_id string,
    method string,
    path string,
    status_code int,
    latency_ms double,
    request_bytes bigint,
    response_bytes bigint,
    environment string,
    api_key_id string,
    user_agent string,
    ip string,
    extras string,
    batch_id bigint,
    event_date date
) using parquet
partitioned by (event_date);

create table if not exists raw.developers (
    developer_id string,
    email string,
    name string,
    company_id string,
    company_name string,
    role string,
    signed_up_at timestamp,
    plan string,
    monthly_quota bigint,
    timezone string,
    marketing_opt_in boolean,
    updated_at timestamp,
    extras string,
    batch_id bigint,
    line_number bigint
) using parquet;

create table if not exists raw.incidents (
    incident_id string,
    title string,
    started_at timestamp,
    ended_at timestamp,
    affected_route string,
    extras string,
    batch_id bigint,
    line_number bigint
) using parquet;

create table if not exists raw.endpoints (
    route string,
    feature_name string,
    promoted boolean,
    docs_url string,
    extras string,
    batch_id bigint,
    line_number bigint
) using parquet;
