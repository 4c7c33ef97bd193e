{# Developers whose funnel stage on the as-of day is sandbox (mirrored to a SendGrid list). #}
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
        current_stage as stage,
        events_last_window as events_7d,
        signup_date,
        first_successful_call_at
    from dim_developers
    where current_stage = 'sandbox'

)

select * from final
