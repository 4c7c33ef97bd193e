{#
    Developer x incident: a call to the affected route (a route template or a LIKE pattern) from
    started_at to ended_at, both included, for every incident that started by the end of the
    as-of day; an incident without an end is still going on.

    Each incident reads only the events of its own time range (a range join that PostgreSQL runs
    as one BRIN range scan on raw.api_events.occurred_at per incident; on Spark the days of the
    incidents select raw.api_events' day partitions), so a run does not re-read every day of
    events; routes are normalised per distinct (incident, developer, path), not per call.
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

incident_paths as (

    -- a range join: PostgreSQL runs one BRIN range scan per incident (a parameterised nested loop)
    select
        incidents.incident_id,
        stg_raw__api_events.developer_id,
        stg_raw__api_events.request_path,
        count(*) as affected_events,
        min(stg_raw__api_events.occurred_at) as first_affected_at,
        max(stg_raw__api_events.occurred_at) as last_affected_at
    from incidents
    inner join stg_raw__api_events
        on
            incidents.started_at <= stg_raw__api_events.occurred_at
            and incidents.affected_until >= stg_raw__api_events.occurred_at
    where
        stg_raw__api_events.occurred_at < {{ as_of_end_timestamp() }}
        and {{ raw_event_days_of_ranges(
            'stg_raw__api_events.occurred_date', 'incidents', 'started_at', 'affected_until') }}
    group by
        incidents.incident_id,
        stg_raw__api_events.developer_id,
        stg_raw__api_events.request_path

),

affected as (

    -- a route template is also a LIKE pattern that matches itself ({, } and / are literal)
    select
        incident_paths.incident_id,
        incident_paths.developer_id,
        cast(sum(incident_paths.affected_events) as bigint) as affected_events,
        min(incident_paths.first_affected_at) as first_affected_at,
        max(incident_paths.last_affected_at) as last_affected_at
    from incident_paths
    inner join incidents
        on incident_paths.incident_id = incidents.incident_id
    where
        coalesce({{ normalize_route('incident_paths.request_path') }}, '(none)')
        like incidents.affected_route
    group by incident_paths.incident_id, incident_paths.developer_id

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
