{#
    One row per campaign member the sequence decided about (a ledger row exists): the arm
    (held_out when the ledger holds a held_out row for the member, else treated: intent to
    treat, whether or not a send went through), the entry day and whether and when the member
    reached the campaign's goal. Campaigns and goals come from the segments' YAML at compile time
    (macro lift_campaigns); a segment without a sequence or without a goal has no rows here.

    Goals: leaves_segment is reached on the day the member left the campaign's segment;
    enters: <segment> on the first day, on or after the entry, the developer is in that segment
    (the entry day itself when they already were). Membership keeps the latest entry of each
    member, so a re-entered member counts from that entry.
#}
{%- set window_days = var('lift_goal_window_days', 14) | int %}

with

stg_email_sync__messages as (

    select * from {{ ref('stg_email_sync__messages') }}

),

stg_email_sync__segment_memberships as (

    select * from {{ ref('stg_email_sync__segment_memberships') }}

),

campaigns as (

    {{ lift_campaigns_rows() }}

),

memberships as (

    select
        segment,
        member_key,
        developer_id,
        entered_as_of as entered_date,
        -- a later sync's exit is not known as of this build
        case when exited_as_of <= {{ as_of_date() }} then exited_as_of end as exited_date
    from stg_email_sync__segment_memberships
    where entered_as_of <= {{ as_of_date() }}

),

decided as (

    select
        stg_email_sync__messages.campaign,
        stg_email_sync__messages.member_key,
        max(stg_email_sync__messages.developer_id) as developer_id,
        max(case when stg_email_sync__messages.status = 'held_out' then 1 else 0 end)
            as held_out_rows,
        count(case when stg_email_sync__messages.is_sent then 1 end) as emails_sent
    from stg_email_sync__messages
    inner join campaigns
        on stg_email_sync__messages.campaign = campaigns.campaign
    group by stg_email_sync__messages.campaign, stg_email_sync__messages.member_key

),

entries as (

    select
        decided.campaign,
        decided.member_key,
        coalesce(memberships.developer_id, decided.developer_id) as developer_id,
        case when decided.held_out_rows > 0 then 'held_out' else 'treated' end as arm,
        decided.emails_sent,
        memberships.entered_date,
        memberships.exited_date,
        campaigns.goal_type,
        campaigns.goal_segment,
        campaigns.holdout_share
    from decided
    inner join campaigns
        on decided.campaign = campaigns.campaign
    inner join memberships
        on
            decided.campaign = memberships.segment
            and decided.member_key = memberships.member_key

),

entered_goal as (

    select
        entries.campaign,
        entries.member_key,
        min(
            case
                when target.entered_date > entries.entered_date then target.entered_date
                else entries.entered_date
            end
        ) as goal_date
    from entries
    inner join memberships as target
        on
            entries.goal_segment = target.segment
            and entries.developer_id = target.developer_id
    where
        entries.goal_type = 'enters'
        and (target.exited_date is null or target.exited_date >= entries.entered_date)
    group by entries.campaign, entries.member_key

),

outcomes as (

    select
        entries.campaign,
        entries.member_key,
        entries.developer_id,
        entries.arm,
        entries.emails_sent,
        entries.entered_date,
        entries.goal_type,
        entries.goal_segment,
        entries.holdout_share,
        case
            when entries.goal_type = 'leaves_segment' then entries.exited_date
            else entered_goal.goal_date
        end as goal_date,
        {{ dbt.dateadd('day', window_days, 'entries.entered_date') }}
            as window_end_date
    from entries
    left join entered_goal
        on
            entries.campaign = entered_goal.campaign
            and entries.member_key = entered_goal.member_key

),

days_to_goal as (

    select
        *,
        {{ dbt.datediff('entered_date', 'goal_date', 'day') }}
            as days_to_goal
    from outcomes

),

final as (

    select
        campaign,
        member_key,
        developer_id,
        arm,
        emails_sent > 0 as was_emailed,
        emails_sent,
        entered_date,
        cast({{ dbt.date_trunc('week', 'entered_date') }} as date) as cohort_week,
        goal_type,
        goal_segment,
        holdout_share,
        goal_date,
        days_to_goal,
        window_end_date <= {{ as_of_date() }} as is_window_complete,
        coalesce(days_to_goal <= {{ window_days }}, false) as reached_goal_in_window
    from days_to_goal

)

select * from final
