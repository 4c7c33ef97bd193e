{#
    Developer x as-of month: month-to-date events (1st of the as-of month to the as-of day) against
    the quota. Ephemeral: a 20,000-row join that only the two quota segments read, inlined there;
    the month-to-date sum comes with the other per-developer totals of
    int_developers_usage_summarized (one pass over the daily usage instead of two).
#}
{{ config(materialized='ephemeral') }}

with

stg_raw__developers as (

    select * from {{ ref('stg_raw__developers') }}

),

int_developers_usage_summarized as (

    select * from {{ ref('int_developers_usage_summarized') }}

),

final as (

    select
        stg_raw__developers.developer_id,
        {{ as_of_month() }} as month_start,
        stg_raw__developers.monthly_quota,
        coalesce(usage.month_to_date_events, 0) as month_to_date_events
    from stg_raw__developers
    left join int_developers_usage_summarized as usage
        on stg_raw__developers.developer_id = usage.developer_id
    where stg_raw__developers.monthly_quota is not null

)

select * from final
