{#
    Developer x incident: a call to the affected route (a route template or a LIKE pattern) from
    started_at to ended_at, both included, for every incident that started by the end of the
    as-of day; an incident without an end is still going on. Only events from the earliest
    incident start on are read (BRIN index on raw.api_events.occurred_at, macros/raw_indexes.sql).
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
    where started_at < {{ as_of_end_timestamp() }}

),

incident_events as (

    -- time range first: each incident reads only its own minutes of events (BRIN index)
    select
        incidents.incident_id,
        incidents.affected_route,
        stg_raw__api_events.developer_id,
        stg_raw__api_events.route,
        stg_raw__api_events.occurred_at
    from incidents
    inner join stg_raw__api_events
        on
            stg_raw__api_events.occurred_at >= incidents.started_at
            and stg_raw__api_events.occurred_at <= incidents.affected_until
            and stg_raw__api_events.occurred_at < {{ as_of_end_timestamp() }}

),

affected as (

    select
        developer_id,
        incident_id,
        count(*) as affected_events,
        min(occurred_at) as first_affected_at,
        max(occurred_at) as last_affected_at
    from incident_events
    where route = affected_route or route like affected_route
    group by developer_id, incident_id

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
