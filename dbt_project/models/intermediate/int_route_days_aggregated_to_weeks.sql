{#
    Developer x route x week (weeks start Monday): the route-days rolled up by week, so
    fct_route_adoption aggregates a few rows per developer and route instead of one per day
    called. Incremental, dbt's delete+insert on week_start: a run rebuilds the weeks from the one
    holding the as-of day minus var incremental_lookback_days to the as-of week, from the
    route-days up to the as-of day (the as-of week holds only its days up to the as-of day).
#}
{{
    config(
        materialized='incremental',
        incremental_strategy=('insert_overwrite' if target.type in ('spark', 'databricks') else 'delete+insert'),
        partition_by=['week_start'],
        unique_key='week_start',
        on_schema_change='fail',
        event_time='week_start',
    )
}}

{%- set week_of_start = dbt.date_trunc('week', "cast('" ~ incremental_start_str() ~ "' as date)") %}

with

int_api_events_aggregated_to_route_days as (

    select * from {{ ref('int_api_events_aggregated_to_route_days') }}

),

route_days_in_scope as (

    select
        developer_id,
        route,
        cast({{ dbt.date_trunc('week', 'usage_date') }} as date) as week_start,
        usage_date,
        events,
        successful_events,
        first_event_at,
        last_event_at
    from int_api_events_aggregated_to_route_days
    where
        usage_date <= {{ as_of_date() }}
        and usage_date >= cast({{ week_of_start }} as date)

),

final as (

    select
        developer_id,
        route,
        week_start,
        min(first_event_at) as first_call_at,
        max(last_event_at) as last_call_at,
        min(usage_date) as first_call_date,
        max(usage_date) as last_call_date,
        cast(count(*) as bigint) as active_days,
        cast(sum(events) as bigint) as events,
        cast(sum(successful_events) as bigint) as successful_events
    from route_days_in_scope
    group by developer_id, route, week_start

)

select * from final
order by week_start
