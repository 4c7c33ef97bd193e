with

developers as (

    select * from {{ source('raw', 'developers') }}

),

ranked as (

    select
        *,
        row_number() over (
            partition by developer_id
            order by batch_id desc, line_number desc
        ) as row_rank
    from developers

),

latest as (

    select * from ranked
    where row_rank = 1

),

final as (

    select
        developer_id,
        nullif(lower(trim(email)), '') as email,
        nullif(trim(name), '') as developer_name,
        nullif(trim(company_id), '') as company_id,
        nullif(trim(company_name), '') as company_name,
        case
            when {{ normalized_role('role') }} in (
                {%- for role in var('developer_roles') %}
                    '{{ role }}'{{ "," if not loop.last }}
                {%- endfor %}
            ) then {{ normalized_role('role') }}
            else 'unknown'
        end as role,
        signed_up_at,
        {{ utc_date('signed_up_at') }} as signup_date,
        nullif(lower(trim(plan)), '') as plan,
        case when monthly_quota > 0 then monthly_quota end as monthly_quota,
        nullif(trim(timezone), '') as timezone,
        coalesce(marketing_opt_in, false) as marketing_opt_in,
        batch_id
    from latest

)

select * from final
