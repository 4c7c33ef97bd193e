{#
    Campaign x exposure: time to first Hello World and time to production of the developers a
    campaign emailed, held out, or assigned to it without reaching (no consent, suppressed,
    capped until they left). Descriptive, not causal: the lift marts compare the randomised arms;
    this shows the funnel milestones each group reached. A developer held out of any member of
    the campaign counts as held_out; else emailed when any email of it was sent.
#}
with

fct_campaign_goal_outcomes as (

    select * from {{ ref('fct_campaign_goal_outcomes') }}

),

dim_developers as (

    select * from {{ ref('dim_developers') }}

),

fct_developer_stage_daily as (

    select * from {{ ref('fct_developer_stage_daily') }}

),

exposures as (

    select
        campaign,
        developer_id,
        case
            when max(case when arm = 'held_out' then 1 else 0 end) = 1 then 'held_out'
            when max(emails_sent) > 0 then 'emailed'
            else 'not_emailed'
        end as exposure,
        min(entered_date) as entered_date
    from fct_campaign_goal_outcomes
    group by campaign, developer_id

),

production_after_entry as (

    select
        exposures.campaign,
        exposures.developer_id,
        min(fct_developer_stage_daily.stage_date) as production_date
    from exposures
    inner join fct_developer_stage_daily
        on exposures.developer_id = fct_developer_stage_daily.developer_id
    where
        fct_developer_stage_daily.stage = 'production'
        -- the first production day on or after entry is the entry day or a stage change
        and (
            fct_developer_stage_daily.is_stage_change
            or fct_developer_stage_daily.stage_date = exposures.entered_date
        )
        and fct_developer_stage_daily.stage_date >= exposures.entered_date
        and fct_developer_stage_daily.stage_date <= {{ as_of_date() }}
    group by exposures.campaign, exposures.developer_id

),

developers as (

    select
        exposures.campaign,
        exposures.exposure,
        dim_developers.first_successful_call_at,
        dim_developers.ttfhw_seconds,
        dim_developers.first_production_date,
        {{ dbt.datediff(
            'dim_developers.signup_date', 'dim_developers.first_production_date', 'day'
        ) }} as days_signup_to_production,
        production_after_entry.production_date,
        {{ dbt.datediff(
            'exposures.entered_date', 'production_after_entry.production_date', 'day'
        ) }} as days_entry_to_production
    from exposures
    left join dim_developers
        on exposures.developer_id = dim_developers.developer_id
    left join production_after_entry
        on
            exposures.campaign = production_after_entry.campaign
            and exposures.developer_id = production_after_entry.developer_id

),

final as (

    select
        campaign,
        exposure,
        count(*) as developers,
        count(first_successful_call_at) as developers_with_first_call,
        {{ percentile('ttfhw_seconds / 3600.0', 0.5) }} as median_ttfhw_hours,
        count(first_production_date) as developers_in_production,
        {{ percentile('days_signup_to_production', 0.5) }} as median_days_signup_to_production,
        count(production_date) as developers_in_production_after_entry,
        {{ percentile('days_entry_to_production', 0.5) }} as median_days_entry_to_production
    from developers
    group by campaign, exposure

)

select * from final
