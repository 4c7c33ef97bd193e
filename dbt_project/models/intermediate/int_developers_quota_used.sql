{# Developer x as-of month: month-to-date events (1st of the as-of month to the as-of day) against the quota. #}
with

fct_developer_daily_usage as (

    select * from {{ ref('fct_developer_daily_usage') }}

),

stg_raw__developers as (

    select * from {{ ref('stg_raw__developers') }}

),

month_to_date as (

    select
        developer_id,
        cast(sum(events) as bigint) as month_to_date_events
    from fct_developer_daily_usage
    where
        usage_date >= cast({{ dbt.date_trunc('month', as_of_date()) }} as date)
        and usage_date <= {{ as_of_date() }}
    group by developer_id

),

final as (

    select
        stg_raw__developers.developer_id,
        cast({{ dbt.date_trunc('month', as_of_date()) }} as date) as month_start,
        stg_raw__developers.monthly_quota,
        coalesce(month_to_date.month_to_date_events, 0) as month_to_date_events
    from stg_raw__developers
    left join month_to_date
        on stg_raw__developers.developer_id = month_to_date.developer_id
    where stg_raw__developers.monthly_quota is not null

)

select * from final
