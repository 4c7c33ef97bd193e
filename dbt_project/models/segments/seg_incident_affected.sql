{#
    Developer x incident: a call to the affected route (a route template or a LIKE pattern) from
    started_at to ended_at, both included. Incidents in scope overlap the
    var incident_window_days (7) days ending on the as-of day; an incident without an end is
    still going on.
#}
with

stg_raw__api_events as (

    select * from {{ ref('stg_raw__api_events') }}

),

stg_raw__incidents as (

    select * from {{ ref('stg_raw__incidents') }}

),

dim_developers as (

    select * from {{ ref('dim_developers') }}

),

incidents as (

    select
        incident_id,
        incident_title,
        affected_route,
        started_at,
        ended_at,
        coalesce(ended_at, {{ as_of_end_timestamp() }}) as affected_until
    from stg_raw__incidents
    where
        started_at < {{ as_of_end_timestamp() }}
        and (
            ended_at is null
            or ended_at >= {{ utc_timestamp_literal(as_of_minus_str(var('incident_window_days') | int - 1)) }}
        )

),

events_in_scope as (

    select
        developer_id,
        route,
        occurred_at
    from stg_raw__api_events
    where
        occurred_at < {{ as_of_end_timestamp() }}
        and occurred_at >= (
            select min(started_at) from incidents
        )

),

affected as (

    select
        events_in_scope.developer_id,
        incidents.incident_id,
        count(*) as affected_events,
        min(events_in_scope.occurred_at) as first_affected_at,
        max(events_in_scope.occurred_at) as last_affected_at
    from events_in_scope
    inner join incidents
        on
            events_in_scope.occurred_at >= incidents.started_at
            and events_in_scope.occurred_at <= incidents.affected_until
            and (
                events_in_scope.route = incidents.affected_route
                or events_in_scope.route like incidents.affected_route
            )
    group by events_in_scope.developer_id, incidents.incident_id

),

final as (

    select
        dim_developers.developer_id || ':' || incidents.incident_id as member_key,
        dim_developers.developer_id,
        dim_developers.email,
        dim_developers.developer_name as name,
        dim_developers.role,
        dim_developers.company_name,
        dim_developers.marketing_opt_in,
        incidents.incident_id,
        incidents.incident_title,
        incidents.affected_route,
        incidents.started_at as incident_started_at,
        incidents.ended_at as incident_ended_at,
        affected.affected_events,
        affected.first_affected_at,
        affected.last_affected_at
    from affected
    inner join incidents
        on affected.incident_id = incidents.incident_id
    inner join dim_developers
        on affected.developer_id = dim_developers.developer_id

)

select * from final
