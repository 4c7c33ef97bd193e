{# One row per developer with usage up to the as-of day: first call, first success, last call. #}
with

fct_developer_daily_usage as (

    select * from {{ ref('fct_developer_daily_usage') }}

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
        cast(sum(successful_events) as bigint) as lifetime_successful_events
    from fct_developer_daily_usage
    where usage_date <= {{ as_of_date() }}
    group by developer_id

)

select * from final
