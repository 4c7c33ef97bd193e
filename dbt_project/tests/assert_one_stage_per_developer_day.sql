{#
    Every developer who signed up on or before the as-of day has exactly one stage on every day
    from sign-up (or first call, when earlier) to the as-of day: no gaps, no duplicates.
    Returns the developers that break it.
#}
-- Attached to fct_developer_stage_daily so Dagster shows it as that asset's check.
{{ config(meta={'dagster': {'ref': {'name': 'fct_developer_stage_daily'}}}) }}

with

dim_developers as (

    select * from {{ ref('dim_developers') }}

),

fct_developer_stage_daily as (

    select * from {{ ref('fct_developer_stage_daily') }}

),

expected as (

    select
        developer_id,
        case
            when {{ utc_date('first_call_at') }} < signup_date then {{ utc_date('first_call_at') }}
            else coalesce(signup_date, {{ utc_date('first_call_at') }})
        end as first_day
    from dim_developers

),

actual as (

    select
        developer_id,
        min(stage_date) as first_stage_date,
        max(stage_date) as last_stage_date,
        count(*) as stage_rows,
        count(distinct stage_date) as stage_days
    from fct_developer_stage_daily
    group by developer_id

),

final as (

    select
        expected.developer_id,
        expected.first_day,
        actual.first_stage_date,
        actual.last_stage_date,
        actual.stage_rows,
        actual.stage_days
    from expected
    left join actual
        on expected.developer_id = actual.developer_id
    where
        expected.first_day is not null
        and (
            actual.developer_id is null
            or actual.first_stage_date != expected.first_day
            or actual.last_stage_date != {{ as_of_date() }}
            or actual.stage_rows != actual.stage_days
            or actual.stage_rows != {{ dbt.datediff('expected.first_day', as_of_date(), 'day') }} + 1
        )

)

select * from final
