{#
    Developers whose first day in the production stage was one of the var milestone_window_days
    (7) days before the as-of day: one email the day after the milestone.
#}
with

dim_developers as (

    select * from {{ ref('dim_developers') }}

),

final as (

    select
        dim_developers.developer_id as member_key,
        {{ segment_member_columns('dim_developers') }}
        dim_developers.first_production_date,
        dim_developers.events_last_window as events_7d
    from dim_developers
    where
        dim_developers.first_production_date
        > {{ as_of_minus(var('milestone_window_days', 7) + 1) }}
        and dim_developers.first_production_date < {{ as_of_date() }}

)

select * from final
