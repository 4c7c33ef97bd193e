{#
    One row per campaign with a holdout: every cohort whose goal window has closed, pooled. The
    row the report draws (difference with its 95 % Newcombe interval); the weekly mart shows
    whether the lift holds from week to week.
#}
with

fct_campaign_goal_outcomes as (

    select * from {{ ref('fct_campaign_goal_outcomes') }}

),

{{ campaign_lift_ctes(['campaign']) }}

select * from final
