{# Day x (from stage, to stage): developers who moved; from_stage 'signed_up' on their first day. #}
with

fct_developer_stage_daily as (

    select * from {{ ref('fct_developer_stage_daily') }}

),

final as (

    select
        stage_date,
        coalesce(previous_stage, 'signed_up') as from_stage,
        stage as to_stage,
        count(*) as developers
    from fct_developer_stage_daily
    where is_stage_change
    group by stage_date, coalesce(previous_stage, 'signed_up'), stage

)

select * from final
