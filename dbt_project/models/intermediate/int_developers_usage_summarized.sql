{#
    One row per developer with usage up to the as-of day: first call, first success, last call,
    lifetime, month-to-date (the quota segments, through int_developers_quota_used) and last 7 and
    30 days' events (the CRM pumps).
    One pass over the developer-days of fct_developer_daily_usage (a table, rebuilt every run:
    tens of thousands of developers from at most a few million developer-days).
#}

with

fct_developer_daily_usage as (

    select * from {{ ref('fct_developer_daily_usage') }}

),

usage_in_scope as (

    select
        developer_id,
        usage_date,
        first_event_at,
        first_success_at,
        last_event_at,
        events,
        successful_events
    from fct_developer_daily_usage
    where usage_date <= {{ as_of_date() }}

),

final as (

    select
        developer_id,
        min(usage_date) as first_event_date,
        min(case when successful_events > 0 then usage_date end) as first_success_date,
        max(usage_date) as last_event_date,
        min(first_event_at) as first_event_at,
        min(first_success_at) as first_success_at,
        max(last_event_at) as last_event_at,
        cast(sum(events) as bigint) as lifetime_events,
        cast(sum(successful_events) as bigint) as lifetime_successful_events,
        cast(coalesce(sum(
            case when usage_date >= {{ as_of_month() }} then events end
        ), 0) as bigint) as month_to_date_events,
        cast(coalesce(sum(
            case when usage_date >= {{ as_of_minus(6) }} then events end
        ), 0) as bigint) as events_7d,
        cast(coalesce(sum(
            case when usage_date >= {{ as_of_minus(29) }} then events end
        ), 0) as bigint) as events_30d
    from usage_in_scope
    group by developer_id

)

select * from final
