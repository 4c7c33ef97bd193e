{#
    Developer x route: when a developer first and last called a route, and how much. A table
    rebuilt every run from the totals of the complete weeks before the as-of week (one row per
    developer and route) and the route-days of the as-of week up to the as-of day; never from raw
    events.
#}
with

int_route_weeks_aggregated_to_routes as (

    select * from {{ ref('int_route_weeks_aggregated_to_routes') }}

),

int_api_events_aggregated_to_route_days as (

    select * from {{ ref('int_api_events_aggregated_to_route_days') }}

),

stg_raw__endpoints as (

    select * from {{ ref('stg_raw__endpoints') }}

),

usage_in_scope as (

    select
        developer_id,
        route,
        first_call_at,
        last_call_at,
        active_days,
        events,
        successful_events
    from int_route_weeks_aggregated_to_routes
    where built_for_week = {{ as_of_week() }}

    union all

    select
        developer_id,
        route,
        first_event_at as first_call_at,
        last_event_at as last_call_at,
        1 as active_days,
        events,
        successful_events
    from int_api_events_aggregated_to_route_days
    where
        usage_date >= {{ as_of_week() }}
        and usage_date <= {{ as_of_date() }}

),

adoption as (

    select
        developer_id,
        route,
        {{ route_usage_totals() }}
    from usage_in_scope
    group by developer_id, route

),

final as (

    select
        adoption.developer_id,
        adoption.route,
        stg_raw__endpoints.feature_name,
        coalesce(stg_raw__endpoints.is_promoted, false) as is_promoted,
        adoption.first_call_at,
        adoption.last_call_at,
        -- the UTC days of those calls (usage days are UTC days)
        {{ utc_date('adoption.first_call_at') }} as first_call_date,
        {{ utc_date('adoption.last_call_at') }} as last_call_date,
        adoption.active_days,
        adoption.events,
        adoption.successful_events
    from adoption
    left join stg_raw__endpoints
        on adoption.route = stg_raw__endpoints.route

)

select * from final
