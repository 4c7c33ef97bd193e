{#
    Developer x day usage. Incremental, dbt's delete+insert on usage_date: a run deletes and
    rebuilds the days from the as-of day minus var incremental_lookback_days to the as-of day, so
    a daily run reads only those days of raw events (the BRIN index on occurred_at) and late
    events of the recent days are picked up; older days are kept. An incremental build gives the
    same rows as a full refresh (tests/dbt proves it over several daily runs, with late events).
    Rows are written in day order, so the models that read a few recent days read a few adjacent
    pages.
#}
{{
    config(
        materialized='incremental',
        incremental_strategy=('insert_overwrite' if target.type in ('spark', 'databricks') else 'delete+insert'),
        partition_by=['usage_date'],
        unique_key='usage_date',
        incremental_predicates=rebuilt_days_predicate('usage_date'),
        on_schema_change='fail',
        event_time='usage_date',
        indexes=[{'columns': ['usage_date']}],
    )
}}

with

stg_raw__api_events as (

    select * from {{ ref('stg_raw__api_events') }}

),

int_api_events_aggregated_to_route_days as (

    select * from {{ ref('int_api_events_aggregated_to_route_days') }}

),

events_in_scope as (

    select *
    from stg_raw__api_events
    where
        occurred_at < {{ as_of_end_timestamp() }}
        and occurred_at >= {{ utc_timestamp_literal(incremental_start_str()) }}
        and {{ raw_event_days_from(incremental_start_str()) }}

),

daily as (

    select
        developer_id,
        occurred_date as usage_date,
        count(*) as events,
        count(case when is_successful then 1 end) as successful_events,
        count(case when status_code between 400 and 499 then 1 end) as client_error_events,
        count(case when status_code >= 500 then 1 end) as server_error_events,
        count(case when status_code = 429 then 1 end) as events_429,
        count(case when environment = 'production' then 1 end) as production_environment_events,
        count(case when environment = 'sandbox' then 1 end) as sandbox_environment_events,
        {{ percentile('latency_ms', 0.5) }} as latency_p50_ms,
        {{ percentile('latency_ms', 0.95) }} as latency_p95_ms,
        cast(coalesce(sum(request_bytes), 0) as bigint) as request_bytes,
        cast(coalesce(sum(response_bytes), 0) as bigint) as response_bytes,
        min(occurred_at) as first_event_at,
        min(case when is_successful then occurred_at end) as first_success_at,
        max(occurred_at) as last_event_at
    from events_in_scope
    group by developer_id, occurred_date

),

routes as (

    select
        developer_id,
        usage_date,
        count(*) as distinct_routes
    from int_api_events_aggregated_to_route_days
    where
        usage_date <= {{ as_of_date() }}
        and usage_date >= cast('{{ incremental_start_str() }}' as date)
    group by developer_id, usage_date

),

final as (

    select
        daily.developer_id,
        daily.usage_date,
        daily.events,
        daily.successful_events,
        daily.client_error_events,
        daily.server_error_events,
        daily.events_429,
        daily.production_environment_events,
        daily.sandbox_environment_events,
        coalesce(routes.distinct_routes, 0) as distinct_routes,
        daily.latency_p50_ms,
        daily.latency_p95_ms,
        daily.request_bytes,
        daily.response_bytes,
        daily.first_event_at,
        daily.first_success_at,
        daily.last_event_at
    from daily
    left join routes
        on
            daily.developer_id = routes.developer_id
            and daily.usage_date = routes.usage_date

)

select * from final
order by usage_date
