{#
    The developer spine: one row per developer record, and one per API caller seen in the events
    up to the as-of day without a record (a team often loads its logs before its user export).
    A caller has no sign-up date, role 'unknown', no email and no marketing consent, so it is
    counted in the funnel and can never be emailed until a record with an address and consent
    arrives (has_developer_record false until then).
#}
with

stg_raw__developers as (

    select * from {{ ref('stg_raw__developers') }}

),

int_developers_usage_summarized as (

    select * from {{ ref('int_developers_usage_summarized') }}

),

developers as (

    select
        developer_id,
        email,
        developer_name,
        company_id,
        company_name,
        role,
        signed_up_at,
        signup_date,
        plan,
        monthly_quota,
        timezone,
        marketing_opt_in,
        true as has_developer_record
    from stg_raw__developers

),

callers as (

    select
        usage.developer_id,
        cast(null as {{ dbt.type_string() }}) as email,
        cast(null as {{ dbt.type_string() }}) as developer_name,
        cast(null as {{ dbt.type_string() }}) as company_id,
        cast(null as {{ dbt.type_string() }}) as company_name,
        'unknown' as role,
        cast(null as {{ type_timestamptz() }}) as signed_up_at,
        cast(null as date) as signup_date,
        cast(null as {{ dbt.type_string() }}) as plan,
        cast(null as bigint) as monthly_quota,
        cast(null as {{ dbt.type_string() }}) as timezone,
        false as marketing_opt_in,
        false as has_developer_record
    from int_developers_usage_summarized as usage
    where not exists (
        select 1 from stg_raw__developers
        where stg_raw__developers.developer_id = usage.developer_id
    )

),

final as (

    select * from developers
    union all
    select * from callers

)

select * from final
