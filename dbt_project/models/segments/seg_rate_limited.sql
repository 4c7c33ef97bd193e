{# Developer x day: at least var rate_limit_alert_429s (20) responses with status 429 on the as-of day. #}
with

fct_developer_daily_usage as (

    select * from {{ ref('fct_developer_daily_usage') }}

),

dim_developers as (

    select * from {{ ref('dim_developers') }}

),

final as (

    select
        dim_developers.developer_id || ':' || cast(usage.usage_date as {{ dbt.type_string() }})
            as member_key,
        {{ segment_member_columns('dim_developers') }}
        dim_developers.plan,
        usage.usage_date,
        usage.events_429,
        usage.events
    from fct_developer_daily_usage as usage
    inner join dim_developers
        on usage.developer_id = dim_developers.developer_id
    where
        usage.usage_date = {{ as_of_date() }}
        and usage.events_429 >= {{ var('rate_limit_alert_429s') }}

)

select * from final
