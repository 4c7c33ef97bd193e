{#
    Campaign x entry cohort week: did the emails move members to the goal faster than the
    holdout? Share reaching the goal within var lift_goal_window_days (14) days of entry, per
    arm, the difference with a 95 % Newcombe hybrid score interval (macro campaign_lift_ctes).
#}
with

fct_campaign_goal_outcomes as (

    select * from {{ ref('fct_campaign_goal_outcomes') }}

),

{{ campaign_lift_ctes(['campaign', 'cohort_week']) }}

select * from final
