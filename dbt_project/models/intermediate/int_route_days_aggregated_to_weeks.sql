{#
    Developer x route x week (weeks start Monday), for the weeks that ended before the as-of week:
    int_route_weeks_aggregated_to_routes sums a few weekly rows per pair instead of every
    route-day. A week is written once it is complete and again only while one of
    its days is still rebuilt (the lookback days), so most daily runs write no row here.
    Incremental, dbt's delete+insert on week_start: a run rebuilds the complete weeks holding a
    day from the as-of day minus var incremental_lookback_days, and the complete weeks after the
    latest week already built (the week that just ended, or several after a pause).
#}
{{
    config(
        materialized='incremental',
        incremental_strategy=('insert_overwrite' if target.type in ('spark', 'databricks') else 'delete+insert'),
        partition_by=['week_start'],
        unique_key='week_start',
        incremental_predicates=rebuilt_days_predicate('week_start', 'week'),
        on_schema_change='fail',
        event_time='week_start',
        indexes=[{'columns': ['week_start']}],
    )
}}

{%- set week_of_start = "cast('" ~ week_start_str(incremental_start_str()) ~ "' as date)" %}
{%- if is_incremental() %}
    {#- the week after the latest one built: a week completed since the last run -#}
    {%- set after_latest = 'cast(' ~ dbt.dateadd('day', 7, 'max(week_start)') ~ ' as date)' %}
    {%- set first_week = 'least(' ~ week_of_start ~ ', (select coalesce(' ~ after_latest ~ ', '
        ~ week_of_start ~ ') from ' ~ this ~ '))' %}
{%- else %}
    {%- set first_week = week_of_start %}
{%- endif %}

with

int_api_events_aggregated_to_route_days as (

    select * from {{ ref('int_api_events_aggregated_to_route_days') }}

),

route_days_in_scope as (

    select
        developer_id,
        route,
        cast({{ dbt.date_trunc('week', 'usage_date') }} as date) as week_start,
        events,
        successful_events,
        first_event_at,
        last_event_at
    from int_api_events_aggregated_to_route_days
    where
        usage_date < {{ as_of_week() }}
        and usage_date >= {{ first_week }}

),

final as (

    select
        developer_id,
        route,
        week_start,
        min(first_event_at) as first_call_at,
        max(last_event_at) as last_call_at,
        cast(count(*) as bigint) as active_days,
        cast(sum(events) as bigint) as events,
        cast(sum(successful_events) as bigint) as successful_events
    from route_days_in_scope
    group by developer_id, route, week_start

)

select * from final
order by week_start
