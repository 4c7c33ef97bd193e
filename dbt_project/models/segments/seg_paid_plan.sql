{# Developers on a plan that is not free: the goal of the production campaign's upgrade ask. #}
with

dim_developers as (

    select * from {{ ref('dim_developers') }}

),

final as (

    select
        dim_developers.developer_id as member_key,
        {{ segment_member_columns('dim_developers') }}
        dim_developers.plan
    from dim_developers
    where coalesce(dim_developers.plan, 'free') <> 'free'

)

select * from final
