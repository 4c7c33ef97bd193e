{#
    Developer x route totals over the complete weeks before the as-of week (built_for_week, the
    Monday of the as-of week): fct_route_adoption adds the route-days of the as-of week to one row
    per pair instead of summing every weekly row each day. The totals change only when the as-of
    week moves on (a Monday) or the lookback days reach back into a complete week, so on other
    days a run writes nothing. Incremental, dbt's delete+insert on built_for_week: a run that
    must rebuild writes every pair again; one that need not selects no row. On PostgreSQL a
    pre-hook first drops totals built for another week (after a backfill or a new week), so the
    table always equals its full refresh; on Spark (insert_overwrite) each week's totals are
    their own partition and the older ones stay.
#}
{{
    config(
        materialized='incremental',
        incremental_strategy=('insert_overwrite' if target.type in ('spark', 'databricks') else 'delete+insert'),
        partition_by=['built_for_week'],
        unique_key='built_for_week',
        on_schema_change='fail',
        pre_hook="{{ drop_totals_of_other_weeks() }}",
    )
}}

{%- set as_of_week_str = week_start_str(as_of_date_str()) %}
{%- if is_incremental() and incremental_start_str() >= as_of_week_str %}
    {#- the lookback days all fall in the as-of week: totals built for it are still right -#}
    {%- set already_built = '(select count(*) > 0 from ' ~ this ~ ' where built_for_week = '
        ~ as_of_week() ~ ')' %}
{%- else %}
    {%- set already_built = 'false' %}
{%- endif %}

with

int_route_days_aggregated_to_weeks as (

    select * from {{ ref('int_route_days_aggregated_to_weeks') }}

),

final as (

    select
        developer_id,
        route,
        {{ as_of_week() }} as built_for_week,
        {{ route_usage_totals() }}
    from int_route_days_aggregated_to_weeks
    where
        week_start < {{ as_of_week() }}
        -- when this week's totals are already built, a one-time check reads no week
        and not {{ already_built }}
    group by developer_id, route

)

select * from final
