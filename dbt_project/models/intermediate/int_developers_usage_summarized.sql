{#
    One row per developer with usage up to the as-of day: first call, first success, last call,
    lifetime and month-to-date events (the quota segments, through int_developers_quota_used).
    The settled days come pre-aggregated by month from int_developer_usage_settled; only the
    recent days (from settled_before_str() to the as-of day) are read from the daily usage, each
    as a one-day month row, so a run aggregates tens of thousands of rows instead of every
    developer-day.
#}
{%- set month_start = 'cast(' ~ dbt.date_trunc('month', as_of_date()) ~ ' as date)' %}

with

int_developer_usage_settled as (

    select * from {{ ref('int_developer_usage_settled') }}

),

fct_developer_daily_usage as (

    select * from {{ ref('fct_developer_daily_usage') }}

),

usage_months as (

    select
        developer_id,
        usage_month,
        first_event_date,
        first_success_date,
        last_event_date,
        first_event_at,
        first_success_at,
        last_event_at,
        events,
        successful_events
    from int_developer_usage_settled

    union all

    select
        developer_id,
        cast({{ dbt.date_trunc('month', 'usage_date') }} as date) as usage_month,
        usage_date as first_event_date,
        case when successful_events > 0 then usage_date end as first_success_date,
        usage_date as last_event_date,
        first_event_at,
        first_success_at,
        last_event_at,
        events,
        successful_events
    from fct_developer_daily_usage
    where
        usage_date >= cast('{{ settled_before_str() }}' as date)
        and usage_date <= {{ as_of_date() }}

),

final as (

    select
        developer_id,
        min(first_event_date) as first_event_date,
        min(first_success_date) as first_success_date,
        max(last_event_date) as last_event_date,
        min(first_event_at) as first_event_at,
        min(first_success_at) as first_success_at,
        max(last_event_at) as last_event_at,
        cast(sum(events) as bigint) as lifetime_events,
        cast(sum(successful_events) as bigint) as lifetime_successful_events,
        cast(coalesce(sum(
            case when usage_month = {{ month_start }} then events end
        ), 0) as bigint) as month_to_date_events
    from usage_months
    group by developer_id

)

select * from final
