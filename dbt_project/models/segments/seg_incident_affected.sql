{#
    Developer x incident: a call to the affected route (a route template or a LIKE pattern) from
    started_at to ended_at, both included, for every incident that started by the end of the
    as-of day; an incident without an end is still going on.

    Only events from the earliest incident start on are read (BRIN index on occurred_at). They
    meet the incidents through an equi-join on the UTC day (a hash join, one scan), then the
    exact time range; routes are normalised per distinct (incident, developer, path), not per call.
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

calendar as (

    {{ day_series('(select min(' ~ utc_date('started_at') ~ ') from incidents)', as_of_date()) }}

),

incident_days as (

    select
        incidents.incident_id,
        incidents.started_at,
        incidents.affected_until,
        calendar.date_day as incident_date
    from incidents
    inner join calendar
        on
            calendar.date_day >= {{ utc_date('incidents.started_at') }}
            and calendar.date_day <= {{ utc_date('incidents.affected_until') }}

),

events_in_scope as (

    select
        developer_id,
        request_path,
        occurred_at,
        occurred_date
    from stg_raw__api_events
    where
        occurred_at >= (select min(incidents.started_at) from incidents)
        and occurred_at < {{ as_of_end_timestamp() }}

),

incident_paths as (

    select
        incident_days.incident_id,
        events_in_scope.developer_id,
        events_in_scope.request_path,
        count(*) as affected_events,
        min(events_in_scope.occurred_at) as first_affected_at,
        max(events_in_scope.occurred_at) as last_affected_at
    from events_in_scope
    inner join incident_days
        on events_in_scope.occurred_date = incident_days.incident_date
    where
        events_in_scope.occurred_at >= incident_days.started_at
        and events_in_scope.occurred_at <= incident_days.affected_until
    group by incident_days.incident_id, events_in_scope.developer_id, events_in_scope.request_path

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
