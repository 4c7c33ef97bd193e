{#
    Developer x day x route: the one pass over the events for routes, so route adoption,
    distinct routes per day, top routes and unused features never rescan events. The route regex
    is the costliest expression of a full build: it runs once per distinct path of the days in
    scope (paths_routed), not once per call.
    Incremental, dbt's delete+insert on usage_date: a run deletes and rebuilds the days from the
    as-of day minus var incremental_lookback_days to the as-of day (late events of those days are
    picked up); older days are kept. Rows are written in day order, so a later run reads a day
    from a few adjacent pages.
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

events_in_scope as (

    select
        developer_id,
        occurred_date,
        coalesce(request_path, '') as request_path,
        is_successful,
        status_code,
        occurred_at
    from stg_raw__api_events
    where
        occurred_at < {{ as_of_end_timestamp() }}
        and occurred_at >= {{ utc_timestamp_literal(incremental_start_str()) }}
        and {{ raw_event_days_from(incremental_start_str()) }}

),

paths_routed as (

    -- one row per distinct path of the days in scope, its route computed after the grouping
    -- (once per path; computed in a plain subquery, the regex would run once per joined call).
    -- A second scan of those days rather than a second read of events_in_scope: PostgreSQL
    -- writes a CTE read twice out whole (every event) before reading it.
    select
        coalesce(request_path, '') as request_path,
        case
            when coalesce(request_path, '') = '' then '(none)'
            else {{ normalize_route("coalesce(request_path, '')") }}
        end as route
    from {{ ref('stg_raw__api_events') }}
    where
        occurred_at < {{ as_of_end_timestamp() }}
        and occurred_at >= {{ utc_timestamp_literal(incremental_start_str()) }}
        and {{ raw_event_days_from(incremental_start_str()) }}
    group by coalesce(request_path, '')

),

routed as (

    select
        events_in_scope.developer_id,
        events_in_scope.occurred_date,
        events_in_scope.is_successful,
        events_in_scope.status_code,
        events_in_scope.occurred_at,
        paths_routed.route
    from events_in_scope
    inner join paths_routed
        on events_in_scope.request_path = paths_routed.request_path

),

final as (

    select
        developer_id,
        occurred_date as usage_date,
        route,
        count(*) as events,
        count(case when is_successful then 1 end) as successful_events,
        count(case when status_code = 429 then 1 end) as events_429,
        min(occurred_at) as first_event_at,
        max(occurred_at) as last_event_at
    from routed
    group by developer_id, occurred_date, route

)

select * from final
order by usage_date
