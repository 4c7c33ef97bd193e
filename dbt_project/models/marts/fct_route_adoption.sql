{#
    Developer x route: when a developer first and last called a route, and how much. The settled
    days come pre-aggregated from int_route_adoption_settled; only the recent route-days (from
    settled_before_str() to the as-of day) are aggregated here, so a run reads one or two days of
    route-days instead of all of them. Settled days all come before the recent ones, so the first
    call is the settled one when there is one and the last call the recent one.
#}
with

int_route_adoption_settled as (

    select * from {{ ref('int_route_adoption_settled') }}

),

int_api_events_aggregated_to_route_days as (

    select * from {{ ref('int_api_events_aggregated_to_route_days') }}

),

stg_raw__endpoints as (

    select * from {{ ref('stg_raw__endpoints') }}

),

recent as (

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
    where
        usage_date >= cast('{{ settled_before_str() }}' as date)
        and usage_date <= {{ as_of_date() }}
    group by developer_id, route

),

adoption as (

    -- one row per pair on each side: a hash join instead of aggregating the union of both
    select
        coalesce(settled.developer_id, recent.developer_id) as developer_id,
        coalesce(settled.route, recent.route) as route,
        coalesce(settled.first_call_at, recent.first_call_at) as first_call_at,
        coalesce(recent.last_call_at, settled.last_call_at) as last_call_at,
        coalesce(settled.first_call_date, recent.first_call_date) as first_call_date,
        coalesce(recent.last_call_date, settled.last_call_date) as last_call_date,
        cast(coalesce(settled.active_days, 0) + coalesce(recent.active_days, 0) as bigint)
            as active_days,
        cast(coalesce(settled.events, 0) + coalesce(recent.events, 0) as bigint) as events,
        cast(
            coalesce(settled.successful_events, 0) + coalesce(recent.successful_events, 0)
            as bigint
        ) as successful_events
    from int_route_adoption_settled as settled
    full outer join recent
        on
            settled.developer_id = recent.developer_id
            and settled.route = recent.route

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
