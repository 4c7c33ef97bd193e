{#
    Day x (from stage, to stage): developers who moved; from_stage 'signed_up' on their first day.
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
