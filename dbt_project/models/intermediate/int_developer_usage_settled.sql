{#
    Developer x calendar month over the settled days of usage (before as-of minus var
    incremental_lookback_days, see settled_before_str()): days no later run rebuilds. A run merges
    the days that became settled since the last one into the kept rows instead of re-reading
    every day of usage, and int_developers_usage_summarized adds the recent days on top. Monthly
    rows, so the month-to-date events of the as-of month come from the same rows. The pre-hook
    empties the table when the as-of date moved back (kept days no longer settled), and the run
    then rebuilds it from every day.
#}
{{
    config(
        materialized='incremental',
        incremental_strategy='delete+insert',
        unique_key=['developer_id', 'usage_month'],
        on_schema_change='fail',
        pre_hook="{{ reset_settled_aggregate('last_event_date') }}",
    )
}}

{%- set merged_through = settled_through_date('last_event_date') %}

with

fct_developer_daily_usage as (

    select * from {{ ref('fct_developer_daily_usage') }}

),

newly_settled_days as (

    select
        developer_id,
        cast({{ dbt.date_trunc('month', 'usage_date') }} as date) as usage_month,
        usage_date,
        successful_events,
        events,
        first_event_at,
        first_success_at,
        last_event_at
    from fct_developer_daily_usage
    where
        usage_date > cast('{{ merged_through or full_refresh_start_str() }}' as date)
        and usage_date < cast('{{ settled_before_str() }}' as date)

),

newly_settled as (

    select
        developer_id,
        usage_month,
        min(usage_date) as first_event_date,
        min(case when successful_events > 0 then usage_date end) as first_success_date,
        max(usage_date) as last_event_date,
        min(first_event_at) as first_event_at,
        min(first_success_at) as first_success_at,
        max(last_event_at) as last_event_at,
        cast(sum(events) as bigint) as events,
        cast(sum(successful_events) as bigint) as successful_events
    from newly_settled_days
    group by developer_id, usage_month

),

kept as (

    {%- if merged_through is not none %}
        select * from {{ this }}
    {%- else %}
        select * from newly_settled
        where false
    {%- endif %}

),

final as (

    -- kept days all come before the newly settled ones: firsts from kept, lasts from the new
    select
        newly_settled.developer_id,
        newly_settled.usage_month,
        coalesce(kept.first_event_date, newly_settled.first_event_date) as first_event_date,
        coalesce(kept.first_success_date, newly_settled.first_success_date)
            as first_success_date,
        newly_settled.last_event_date,
        coalesce(kept.first_event_at, newly_settled.first_event_at) as first_event_at,
        coalesce(kept.first_success_at, newly_settled.first_success_at) as first_success_at,
        newly_settled.last_event_at,
        cast(newly_settled.events + coalesce(kept.events, 0) as bigint) as events,
        cast(
            newly_settled.successful_events + coalesce(kept.successful_events, 0) as bigint
        ) as successful_events
    from newly_settled
    left join kept
        on
            newly_settled.developer_id = kept.developer_id
            and newly_settled.usage_month = kept.usage_month

)

select * from final
