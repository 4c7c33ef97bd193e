{#
    Day x stage for the funnel dashboard: developers in each stage, and how many entered and left it.
    Incremental like fct_developer_stage_daily (dbt's delete+insert on stage_date): a run rebuilds
    the days that model rebuilt.
#}
{{
    config(
        materialized='incremental',
        incremental_strategy=('insert_overwrite' if target.type in ('spark', 'databricks') else 'delete+insert'),
        partition_by=['stage_date'],
        unique_key='stage_date',
        incremental_predicates=rebuilt_days_predicate('stage_date'),
        on_schema_change='fail',
        event_time='stage_date',
    )
}}

with

fct_developer_stage_daily as (

    select * from {{ ref('fct_developer_stage_daily') }}
    where
        stage_date <= {{ as_of_date() }}
        and stage_date >= cast('{{ incremental_start_str() }}' as date)

),

present as (

    select
        stage_date,
        stage,
        count(*) as developers,
        count(case when is_stage_change then 1 end) as developers_entered
    from fct_developer_stage_daily
    group by stage_date, stage

),

exited as (

    select
        stage_date,
        previous_stage as stage,
        count(*) as developers_exited
    from fct_developer_stage_daily
    where is_stage_change and previous_stage is not null
    group by stage_date, previous_stage

),

final as (

    select
        coalesce(present.stage_date, exited.stage_date) as stage_date,
        coalesce(present.stage, exited.stage) as stage,
        coalesce(present.developers, 0) as developers,
        coalesce(present.developers_entered, 0) as developers_entered,
        coalesce(exited.developers_exited, 0) as developers_exited
    from present
    full outer join exited
        on
            present.stage_date = exited.stage_date
            and present.stage = exited.stage

)

select * from final
