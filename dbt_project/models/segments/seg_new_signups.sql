{# Developers who signed up in the last var welcome_window_days (3) days: the welcome email. #}
with

dim_developers as (

    select * from {{ ref('dim_developers') }}

),

final as (

    select
        developer_id as member_key,
        developer_id,
        email,
        developer_name as name,
        role,
        company_name,
        marketing_opt_in,
        plan,
        signed_up_at,
        signup_date,
        current_stage as stage
    from dim_developers
    where
        signup_date > {{ as_of_minus(var('welcome_window_days')) }}
        and signup_date <= {{ as_of_date() }}

)

select * from final
