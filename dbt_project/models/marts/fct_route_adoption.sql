{#
    Developer x route: when a developer first and last called a route, and how much. A table
    rebuilt every run from the weekly route usage up to the as-of week (a few rows per developer
    and route, never raw events or route-days; the as-of week holds its days up to the as-of day).
#}
with

int_route_days_aggregated_to_weeks as (

    select * from {{ ref('int_route_days_aggregated_to_weeks') }}

),

stg_raw__endpoints as (

    select * from {{ ref('stg_raw__endpoints') }}

),

adoption as (

    select
        developer_id,
        route,
        min(first_call_at) as first_call_at,
        max(last_call_at) as last_call_at,
        min(first_call_date) as first_call_date,
        max(last_call_date) as last_call_date,
        cast(sum(active_days) as bigint) as active_days,
        cast(sum(events) as bigint) as events,
        cast(sum(successful_events) as bigint) as successful_events
    from int_route_days_aggregated_to_weeks
    where week_start <= {{ as_of_date() }}
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
