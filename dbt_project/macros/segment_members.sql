{#
    The columns every segment table starts with (the member contract email_sync reads), so the
    segment models share one select list instead of repeating it. `source` is the alias of a
    relation with dim_developers' columns. member_key is not here: each segment decides its grain.
#}
{% macro segment_member_columns(source='dim_developers') -%}
    {{ source }}.developer_id,
    {{ source }}.email,
    {{ source }}.developer_name as name,
    {{ source }}.role,
    {{ source }}.company_name,
    {{ source }}.marketing_opt_in,
{%- endmacro %}

{#
    A funnel-stage segment (not_integrated, sandbox, production): one row per developer whose
    stage on the as-of day is `stage`. The three stage models are this macro with one argument.
#}
{% macro stage_segment(stage) -%}
with

dim_developers as (

    select * from {{ ref('dim_developers') }}

),

final as (

    select
        dim_developers.developer_id as member_key,
        {{ segment_member_columns('dim_developers') }}
        dim_developers.plan,
        dim_developers.current_stage as stage,
        dim_developers.events_last_window as events_7d,
        dim_developers.signup_date,
        dim_developers.first_successful_call_at
    from dim_developers
    where dim_developers.current_stage = '{{ stage }}'

)

select * from final
{%- endmacro %}

{#
    A quota segment (quota_warning, quota_exceeded): one row per developer and month with the
    month-to-date share of the monthly quota; the caller block is the condition on
    `quota.month_to_date_events` and `quota.monthly_quota` that admits a member.
#}
{% macro quota_segment() -%}
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
        {{ segment_member_columns('dim_developers') }}
        dim_developers.plan,
        quota.month_start,
        quota.monthly_quota,
        quota.month_to_date_events,
        round(100.0 * quota.month_to_date_events / quota.monthly_quota, 1) as quota_used_pct
    from int_developers_quota_used as quota
    inner join dim_developers
        on quota.developer_id = dim_developers.developer_id
    where
        {{ caller() }}

)

select * from final
{%- endmacro %}
