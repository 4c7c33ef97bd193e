{# Developer x month: month-to-date events at or above var quota_warning_share (80%) and at most 100% of the monthly quota. #}
with

int_developers_quota_used as (

    select * from {{ ref('int_developers_quota_used') }}

),

dim_developers as (

    select * from {{ ref('dim_developers') }}

),

final as (

    select
        dim_developers.developer_id || ':' || cast(quota.month_start as {{ dbt.type_string() }})
            as member_key,
        dim_developers.developer_id,
        dim_developers.email,
        dim_developers.developer_name as name,
        dim_developers.role,
        dim_developers.company_name,
        dim_developers.marketing_opt_in,
        dim_developers.plan,
        quota.month_start,
        quota.monthly_quota,
        quota.month_to_date_events,
        round(100.0 * quota.month_to_date_events / quota.monthly_quota, 1) as quota_used_pct
    from int_developers_quota_used as quota
    inner join dim_developers
        on quota.developer_id = dim_developers.developer_id
    where
        quota.month_to_date_events >= {{ var('quota_warning_share') }} * quota.monthly_quota
        and quota.month_to_date_events <= quota.monthly_quota

)

select * from final
