{# Day x (from stage, to stage): developers who moved; from_stage 'signed_up' on their first day. #}
{{
    config(
        materialized='incremental',
        incremental_strategy='append',
        on_schema_change='fail',
        pre_hook="{{ delete_from_incremental_start('stage_date') }}",
    )
}}

{%- set start = incremental_start_date('stage_date') %}

with

fct_developer_stage_daily as (

    select * from {{ ref('fct_developer_stage_daily') }}
    {%- if start is not none %}
        where stage_date >= cast('{{ start }}' as date)
    {%- endif %}

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
