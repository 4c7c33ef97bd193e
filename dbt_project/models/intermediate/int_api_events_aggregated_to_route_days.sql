{#
    Developer x day x route: the one pass over the events for routes, so route adoption,
    distinct routes per day, top routes and unused features never rescan events. Routes come
    from the int_request_paths_normalized lookup (the regex ran once per distinct path); a path
    missing from it (not possible after a normal run) is normalised here.
    Incremental: a run rebuilds only the days from incremental_start_date() on; a built day whose
    event count still matches the events that landed for it is kept (late events rebuild it).
    Rows are written in day order, so a later run reads a day from a few adjacent pages.
#}
{{
    config(
        materialized='incremental',
        incremental_strategy='append',
        on_schema_change='fail',
        pre_hook="{{ delete_from_incremental_start('usage_date', 'events') }}",
        indexes=[{'columns': ['usage_date']}],
    )
}}

{%- set start = incremental_start_date('usage_date', 'events') %}

with

stg_raw__api_events as (

    select * from {{ ref('stg_raw__api_events') }}

),

int_request_paths_normalized as (

    select * from {{ ref('int_request_paths_normalized') }}

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
        and occurred_at >= {{ utc_timestamp_literal(start or full_refresh_start_str()) }}

),

routed as (

    select
        events_in_scope.developer_id,
        events_in_scope.occurred_date,
        events_in_scope.is_successful,
        events_in_scope.status_code,
        events_in_scope.occurred_at,
        coalesce(
            paths.route,
            case
                when events_in_scope.request_path = '' then '(none)'
                else {{ normalize_route('events_in_scope.request_path') }}
            end
        ) as route
    from events_in_scope
    left join int_request_paths_normalized as paths
        on events_in_scope.request_path = paths.request_path

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
