{#
    What HubSpot should hold on each contact: one row per email (a developer with an address),
    built to be pushed by crm_sync (config.meta.onramp.crm in _pumps__models.yml says which
    columns go to which HubSpot property). Two developer ids sharing an address are one HubSpot
    contact: the latest sign-up wins, so the contact carries one developer's numbers, not a mix.

    The segments are listed here (a ref each, so dbt builds them first); a new segment that
    should show on the contact is one more name in this list and one more option in the YAML.
#}
{%- set segment_models = [
    'seg_incident_affected',
    'seg_new_signups',
    'seg_quota_exceeded',
    'seg_quota_warning',
    'seg_rate_limited',
    'seg_signup_no_calls_7d',
    'seg_stage_not_integrated',
    'seg_stage_production',
    'seg_stage_sandbox',
    'seg_stopped_traffic',
    'seg_unused_feature',
] -%}

with

dim_developers as (

    select * from {{ ref('dim_developers') }}

),

fct_developer_daily_usage as (

    select * from {{ ref('fct_developer_daily_usage') }}

),

{% for segment_model in segment_models %}
{{ segment_model }} as (

    select distinct developer_id from {{ ref(segment_model) }}

),

{% endfor %}

recent_usage as (

    -- the last 7 / 30 days end with the as-of day; the month starts on the 1st of the as-of
    -- month, never more than 30 days back, so one pass over the last 31 days covers all three
    select
        developer_id,
        sum(case when usage_date >= {{ as_of_minus(6) }} then events else 0 end)
            as api_events_7d,
        sum(case when usage_date >= {{ as_of_minus(29) }} then events else 0 end)
            as api_events_30d,
        sum(
            case
                when usage_date >= cast({{ dbt.date_trunc('month', as_of_date()) }} as date)
                    then events
                else 0
            end
        ) as month_to_date_events
    from fct_developer_daily_usage
    where
        usage_date >= {{ as_of_minus(30) }}
        and usage_date <= {{ as_of_date() }}
    group by developer_id

),

segment_members as (

    {% for segment_model in segment_models %}
    select
        developer_id,
        '{{ segment_model[4:] }}' as segment_name
    from {{ segment_model }}
    {% if not loop.last %}union all{% endif %}
    {% endfor %}

),

segments_per_developer as (

    select
        developer_id,
        {{ dbt.listagg('segment_name', "';'", 'order by segment_name') }} as segment_names
    from segment_members
    group by developer_id

),

one_developer_per_email as (

    select
        *,
        row_number() over (
            partition by email
            order by signed_up_at desc nulls last, developer_id desc
        ) as email_rank
    from dim_developers
    where email is not null

),

final as (

    select
        developers.email,
        developers.developer_id,
        developers.company_id,
        coalesce(recent_usage.api_events_7d, 0) as onramp_api_events_7d,
        coalesce(recent_usage.api_events_30d, 0) as onramp_api_events_30d,
        developers.current_stage as onramp_funnel_stage,
        developers.role as onramp_role,
        developers.first_call_at as onramp_first_call_at,
        developers.last_call_at as onramp_last_call_at,
        developers.top_route as onramp_top_route,
        case
            when developers.monthly_quota > 0
                then round(
                    cast(100.0 * coalesce(recent_usage.month_to_date_events, 0) as numeric)
                    / developers.monthly_quota,
                    1
                )
        end as onramp_plan_quota_used_pct,
        coalesce(segments_per_developer.segment_names, '') as onramp_segments
    from one_developer_per_email as developers
    left join recent_usage
        on developers.developer_id = recent_usage.developer_id
    left join segments_per_developer
        on developers.developer_id = segments_per_developer.developer_id
    where developers.email_rank = 1

)

select * from final
