{# Developers who signed up in the last 7 days and have not made a single API call yet. #}
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
        {{ dbt.datediff('signup_date', as_of_date(), 'day') }}
            as days_since_signup
    from dim_developers
    where
        signup_date > {{ as_of_minus(var('signup_no_calls_days')) }}
        and signup_date <= {{ as_of_date() }}
        and lifetime_events = 0

)

select * from final
