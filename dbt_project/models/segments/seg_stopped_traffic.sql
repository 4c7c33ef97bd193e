{#
    Developers whose last call was on a day from as-of - 13 to as-of - 7 (vars
    stopped_traffic_min_days / stopped_traffic_max_days): they went quiet a week ago.
#}
with

dim_developers as (

    select * from {{ ref('dim_developers') }}

),

final as (

    select
        dim_developers.developer_id as member_key,
        {{ segment_member_columns('dim_developers') }}
        dim_developers.plan,
        dim_developers.current_stage as stage,
        dim_developers.top_route,
        dim_developers.last_call_at,
        dim_developers.last_call_date,
        {{ dbt.datediff('dim_developers.last_call_date', as_of_date(), 'day') }}
            as days_since_last_call,
        dim_developers.lifetime_events
    from dim_developers
    where
        dim_developers.last_call_date >= {{ as_of_minus(var('stopped_traffic_max_days')) }}
        and dim_developers.last_call_date <= {{ as_of_minus(var('stopped_traffic_min_days')) }}

)

select * from final
