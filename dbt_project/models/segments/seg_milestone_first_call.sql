{#
    Developers whose first successful call was on one of the var milestone_window_days (7) days
    before the as-of day: a member enters the day after the milestone and gets one email.
#}
with

dim_developers as (

    select * from {{ ref('dim_developers') }}

),

final as (

    select
        dim_developers.developer_id as member_key,
        {{ segment_member_columns('dim_developers') }}
        dim_developers.first_successful_call_at,
        cast(dim_developers.ttfhw_seconds as bigint) as ttfhw_seconds
    from dim_developers
    where
        cast(dim_developers.first_successful_call_at as date)
        > {{ as_of_minus(var('milestone_window_days', 7) + 1) }}
        and cast(dim_developers.first_successful_call_at as date) < {{ as_of_date() }}

)

select * from final
