with

stg_email_sync__messages as (

    select * from {{ ref('stg_email_sync__messages') }}

),

stg_email_sync__segment_memberships as (

    select * from {{ ref('stg_email_sync__segment_memberships') }}

),

steps as (

    select
        campaign,
        step_number,
        max(template) as template,
        count(*) as entered,
        sum(case when is_sent then 1 else 0 end) as sent,
        sum(case when deferrals > 0 then 1 else 0 end) as deferred,
        sum(case when status = 'held_out' then 1 else 0 end) as held_out,
        sum(case when status = 'suppressed' then 1 else 0 end) as suppressed
    from stg_email_sync__messages
    where step_number is not null
    group by campaign, step_number

),

endings as (

    -- a run ends at the last step decided for it
    select
        segment as campaign,
        sequence_step as step_number,
        sum(
            case when exited_at is not null and goal_reached_as_of is null then 1 else 0 end
        ) as exited,
        sum(case when goal_reached_as_of is not null then 1 else 0 end) as reached_goal
    from stg_email_sync__segment_memberships
    where sequence_period is not null and sequence_step > 0
    group by segment, sequence_step

),

final as (

    select
        steps.campaign,
        steps.step_number,
        steps.template,
        steps.entered,
        steps.sent,
        steps.deferred,
        steps.held_out,
        steps.suppressed,
        coalesce(endings.exited, 0) as exited,
        coalesce(endings.reached_goal, 0) as reached_goal
    from steps
    left join endings
        on
            steps.campaign = endings.campaign
            and steps.step_number = endings.step_number

)

select * from final
