with

developers as (

    select * from {{ source('raw', 'developers') }}

),

ranked as (

    select
        *,
        row_number() over (
            partition by developer_id
            -- the source's own timestamp first (rows without one count as older), then load order
            order by
                case when updated_at is null then 1 else 0 end,
                updated_at desc,
                batch_id desc,
                line_number desc
        ) as row_rank,
        -- an opt-out is never undone by an older export (docs/raw-formats.md)
        max(case when marketing_opt_in = false then updated_at end)
            over (partition by developer_id) as last_opt_out_at,
        max(case when marketing_opt_in = false and updated_at is null then batch_id end)
            over (partition by developer_id) as last_untimed_opt_out_batch
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
        coalesce(
            marketing_opt_in
            and (last_opt_out_at is null or updated_at > last_opt_out_at)
            and (
                last_untimed_opt_out_batch is null
                or (updated_at is not null and batch_id > last_untimed_opt_out_batch)
            ),
            false
        ) as marketing_opt_in,
        batch_id
    from latest

)

select * from final
