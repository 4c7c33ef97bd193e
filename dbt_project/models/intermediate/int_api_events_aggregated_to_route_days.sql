{#
    Developer x day x route: the one pass over the events for routes, so route adoption,
    distinct routes per day, top routes and unused features never rescan events. The route
    regex is the costliest part of the whole build, so it runs once per distinct request path
    (a lookup joined back to the calls), not once per call.
    Incremental: a run rebuilds only the days from incremental_start_date() on.
#}
{{
    config(
        materialized='incremental',
        incremental_strategy='append',
        on_schema_change='fail',
        pre_hook="{{ delete_from_incremental_start('usage_date') }}",
        indexes=[{'columns': ['usage_date']}],
    )
}}

{%- set start = incremental_start_date('usage_date') %}
{%- set days_in_scope -%}
    occurred_at < {{ as_of_end_timestamp() }}
    {%- if start is not none %} and occurred_at >= {{ utc_timestamp_literal(start) }}{% endif %}
{%- endset %}

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
    where {{ days_in_scope }}

),

distinct_paths as (

    -- its own scan: a second reference to events_in_scope would materialise every call
    select distinct coalesce(request_path, '') as request_path
    from stg_raw__api_events
    where {{ days_in_scope }}

),

path_routes as (

    select
        request_path,
        case
            when request_path = '' then '(none)'
            else {{ normalize_route('request_path') }}
        end as route
    from distinct_paths

),

final as (

    select
        events_in_scope.developer_id,
        events_in_scope.occurred_date as usage_date,
        path_routes.route,
        count(*) as events,
        count(case when events_in_scope.is_successful then 1 end) as successful_events,
        count(case when events_in_scope.status_code = 429 then 1 end) as events_429,
        min(events_in_scope.occurred_at) as first_event_at,
        max(events_in_scope.occurred_at) as last_event_at
    from events_in_scope
    inner join path_routes
        on events_in_scope.request_path = path_routes.request_path
    group by events_in_scope.developer_id, events_in_scope.occurred_date, path_routes.route

)

select * from final
