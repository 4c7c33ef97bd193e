{#
    One row per developer who signed up on or before the as-of day, and per API caller without a
    developer record (has_developer_record false: no sign-up date, role 'unknown', no email, no
    consent): who they are, where they are in the funnel on the as-of day, and the milestones that
    got them there. Indexed on
    developer_id: the segments join their few members to it (an index lookup each).
#}
{{ config(indexes=[{'columns': ['developer_id'], 'unique': True}]) }}
with

int_developers_and_callers as (

    select * from {{ ref('int_developers_and_callers') }}

),

int_developers_usage_summarized as (

    select * from {{ ref('int_developers_usage_summarized') }}

),

fct_developer_stage_daily as (

    select * from {{ ref('fct_developer_stage_daily') }}

),

fct_route_adoption as (

    select * from {{ ref('fct_route_adoption') }}

),

milestones as (

    -- the first day in sandbox / production is always a stage change (the day before was in
    -- another stage, or there was none), so only stage changes and the as-of day are read
    select
        developer_id,
        min(case when stage in ('sandbox', 'production') then stage_date end) as first_sandbox_date,
        min(case when stage = 'production' then stage_date end) as first_production_date,
        max(case when stage_date = {{ as_of_date() }} then stage end) as current_stage,
        max(case when stage_date = {{ as_of_date() }} then window_events end) as events_last_window
    from fct_developer_stage_daily
    where
        stage_date <= {{ as_of_date() }}
        and (is_stage_change or stage_date = {{ as_of_date() }})
    group by developer_id

),

top_route_events as (

    select
        developer_id,
        max(events) as top_events
    from fct_route_adoption
    group by developer_id

),

top_routes as (

    -- the most called route; on a tie, the first in route order (one row per developer)
    select
        fct_route_adoption.developer_id,
        min(fct_route_adoption.route) as top_route
    from fct_route_adoption
    inner join top_route_events
        on
            fct_route_adoption.developer_id = top_route_events.developer_id
            and fct_route_adoption.events = top_route_events.top_events
    group by fct_route_adoption.developer_id

),

final as (

    select
        developers.developer_id,
        developers.email,
        developers.developer_name,
        developers.company_id,
        developers.company_name,
        developers.role,
        developers.plan,
        developers.monthly_quota,
        developers.timezone,
        developers.marketing_opt_in,
        developers.signed_up_at,
        developers.signup_date,
        developers.has_developer_record,
        usage.first_event_at as first_call_at,
        usage.first_success_at as first_successful_call_at,
        {{ dbt.datediff('developers.signed_up_at', 'usage.first_success_at', 'second') }}
            as ttfhw_seconds,
        milestones.first_sandbox_date,
        milestones.first_production_date,
        coalesce(milestones.current_stage, 'not_integrated') as current_stage,
        coalesce(milestones.events_last_window, 0) as events_last_window,
        usage.last_event_at as last_call_at,
        usage.last_event_date as last_call_date,
        coalesce(usage.lifetime_events, 0) as lifetime_events,
        top_routes.top_route
    from int_developers_and_callers as developers
    left join int_developers_usage_summarized as usage
        on developers.developer_id = usage.developer_id
    left join milestones
        on developers.developer_id = milestones.developer_id
    left join top_routes
        on developers.developer_id = top_routes.developer_id
    where coalesce(developers.signup_date, {{ as_of_date() }}) <= {{ as_of_date() }}

)

select * from final
