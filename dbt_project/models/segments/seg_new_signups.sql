{# Developers who signed up in the last var welcome_window_days (3) days: the welcome email. #}
with

dim_developers as (

    select * from {{ ref('dim_developers') }}

),

final as (

    select
        dim_developers.developer_id as member_key,
        {{ segment_member_columns('dim_developers') }}
        dim_developers.plan,
        dim_developers.signed_up_at,
        dim_developers.signup_date,
        dim_developers.current_stage as stage
    from dim_developers
    where
        dim_developers.signup_date > {{ as_of_minus(var('welcome_window_days')) }}
        and dim_developers.signup_date <= {{ as_of_date() }}

)

select * from final
