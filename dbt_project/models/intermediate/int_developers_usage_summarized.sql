{#
    One row per developer with usage up to the as-of day: first call, first success, last call,
    lifetime and month-to-date events (the quota segments, through int_developers_quota_used).
    The settled days come pre-aggregated by month from int_developer_usage_settled; only the
    recent days (from settled_before_str() to the as-of day) are read from the daily usage, so a
    run reads tens of thousands of rows instead of every developer-day. Settled days all come
    before the recent ones: firsts are the settled ones when there are any, lasts the recent ones.
#}
{%- set month_start = 'cast(' ~ dbt.date_trunc('month', as_of_date()) ~ ' as date)' %}

with

int_developer_usage_settled as (

    select * from {{ ref('int_developer_usage_settled') }}

),

fct_developer_daily_usage as (

    select * from {{ ref('fct_developer_daily_usage') }}

),

settled as (

    select
        developer_id,
        min(first_event_date) as first_event_date,
        min(first_success_date) as first_success_date,
        max(last_event_date) as last_event_date,
        min(first_event_at) as first_event_at,
        min(first_success_at) as first_success_at,
        max(last_event_at) as last_event_at,
        sum(events) as lifetime_events,
        sum(successful_events) as lifetime_successful_events,
        sum(case when usage_month = {{ month_start }} then events end) as month_to_date_events
    from int_developer_usage_settled
    group by developer_id

),

recent as (

    select
        developer_id,
        min(usage_date) as first_event_date,
        min(case when successful_events > 0 then usage_date end) as first_success_date,
        max(usage_date) as last_event_date,
        min(first_event_at) as first_event_at,
        min(first_success_at) as first_success_at,
        max(last_event_at) as last_event_at,
        sum(events) as lifetime_events,
        sum(successful_events) as lifetime_successful_events,
        sum(case when usage_date >= {{ month_start }} then events end) as month_to_date_events
    from fct_developer_daily_usage
    where
        usage_date >= cast('{{ settled_before_str() }}' as date)
        and usage_date <= {{ as_of_date() }}
    group by developer_id

),

final as (

    select
        coalesce(settled.developer_id, recent.developer_id) as developer_id,
        coalesce(settled.first_event_date, recent.first_event_date) as first_event_date,
        coalesce(settled.first_success_date, recent.first_success_date) as first_success_date,
        coalesce(recent.last_event_date, settled.last_event_date) as last_event_date,
        coalesce(settled.first_event_at, recent.first_event_at) as first_event_at,
        coalesce(settled.first_success_at, recent.first_success_at) as first_success_at,
        coalesce(recent.last_event_at, settled.last_event_at) as last_event_at,
        cast(
            coalesce(settled.lifetime_events, 0) + coalesce(recent.lifetime_events, 0) as bigint
        ) as lifetime_events,
        cast(
            coalesce(settled.lifetime_successful_events, 0)
            + coalesce(recent.lifetime_successful_events, 0)
            as bigint
        ) as lifetime_successful_events,
        cast(
            coalesce(settled.month_to_date_events, 0) + coalesce(recent.month_to_date_events, 0)
            as bigint
        ) as month_to_date_events
    from settled
    full outer join recent
        on settled.developer_id = recent.developer_id

)

select * from final
