{# Developers who signed up in the last 7 days and have not made a single API call yet. #}
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
        {{ dbt.datediff('dim_developers.signup_date', as_of_date(), 'day') }}
            as days_since_signup
    from dim_developers
    where
        dim_developers.signup_date > {{ as_of_minus(var('signup_no_calls_days')) }}
        and dim_developers.signup_date <= {{ as_of_date() }}
        and dim_developers.lifetime_events = 0

)

select * from final
