{#
    Developer x route: when a developer first and last called a route, and how much. A table
    rebuilt every run from the route-days up to the as-of day (one aggregate over
    int_api_events_aggregated_to_route_days, never over raw events).
#}
with

int_api_events_aggregated_to_route_days as (

    select * from {{ ref('int_api_events_aggregated_to_route_days') }}

),

stg_raw__endpoints as (

    select * from {{ ref('stg_raw__endpoints') }}

),

adoption as (

    select
        developer_id,
        route,
        min(first_event_at) as first_call_at,
        max(last_event_at) as last_call_at,
        min(usage_date) as first_call_date,
        max(usage_date) as last_call_date,
        count(*) as active_days,
        cast(sum(events) as bigint) as events,
        cast(sum(successful_events) as bigint) as successful_events
    from int_api_events_aggregated_to_route_days
    where usage_date <= {{ as_of_date() }}
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
        adoption.first_call_date,
        adoption.last_call_date,
        adoption.active_days,
        adoption.events,
        adoption.successful_events
    from adoption
    left join stg_raw__endpoints
        on adoption.route = stg_raw__endpoints.route

)

select * from final
