{#
    What HubSpot should hold on each contact: one row per email (a developer with an address),
    built to be pushed by crm_sync (config.meta.onramp.crm in _pumps__models.yml says which
    columns go to which HubSpot property). Two developer ids sharing an address are one HubSpot
    contact: the latest sign-up wins, so the contact carries one developer's numbers, not a mix.

    The segments are listed in segment_members (a ref each, so dbt builds them first); a new
    segment that should show on the contact is one more select there and one more option in the
    YAML.
#}

with

dim_developers as (

    select * from {{ ref('dim_developers') }}

),

int_developers_usage_summarized as (

    select * from {{ ref('int_developers_usage_summarized') }}

),

segment_members as (

    -- one row per developer and segment (some segments have several rows per developer)
    select distinct
        developer_id,
        'incident_affected' as segment_name
    from {{ ref('seg_incident_affected') }}

    union all

    select distinct
        developer_id,
        'new_signups' as segment_name
    from {{ ref('seg_new_signups') }}

    union all

    select distinct
        developer_id,
        'quota_exceeded' as segment_name
    from {{ ref('seg_quota_exceeded') }}

    union all

    select distinct
        developer_id,
        'quota_warning' as segment_name
    from {{ ref('seg_quota_warning') }}

    union all

    select distinct
        developer_id,
        'rate_limited' as segment_name
    from {{ ref('seg_rate_limited') }}

    union all

    select distinct
        developer_id,
        'signup_no_calls_7d' as segment_name
    from {{ ref('seg_signup_no_calls_7d') }}

    union all

    select distinct
        developer_id,
        'stage_not_integrated' as segment_name
    from {{ ref('seg_stage_not_integrated') }}

    union all

    select distinct
        developer_id,
        'stage_production' as segment_name
    from {{ ref('seg_stage_production') }}

    union all

    select distinct
        developer_id,
        'stage_sandbox' as segment_name
    from {{ ref('seg_stage_sandbox') }}

    union all

    select distinct
        developer_id,
        'stopped_traffic' as segment_name
    from {{ ref('seg_stopped_traffic') }}

    union all

    select distinct
        developer_id,
        'unused_feature' as segment_name
    from {{ ref('seg_unused_feature') }}

),

segments_per_developer as (

    select
        developer_id,
        {{ sorted_listagg('segment_name', "';'") }} as segment_names
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
        -- the last 7 / 30 days end with the as-of day
        coalesce(usage_summary.events_7d, 0) as onramp_api_events_7d,
        coalesce(usage_summary.events_30d, 0) as onramp_api_events_30d,
        developers.current_stage as onramp_funnel_stage,
        developers.role as onramp_role,
        developers.first_call_at as onramp_first_call_at,
        developers.last_call_at as onramp_last_call_at,
        developers.top_route as onramp_top_route,
        case
            when developers.monthly_quota > 0
                then round(
                    cast(
                        100.0 * coalesce(usage_summary.month_to_date_events, 0) as numeric
                    )
                    / developers.monthly_quota,
                    1
                )
        end as onramp_plan_quota_used_pct,
        coalesce(segments_per_developer.segment_names, '') as onramp_segments
    from one_developer_per_email as developers
    left join int_developers_usage_summarized as usage_summary
        on developers.developer_id = usage_summary.developer_id
    left join segments_per_developer
        on developers.developer_id = segments_per_developer.developer_id
    where developers.email_rank = 1

)

select * from final
