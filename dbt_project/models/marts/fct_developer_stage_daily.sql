{#
    The funnel stage of every developer on every day from sign-up (or first call, when earlier;
    an API caller without a developer record starts on the day of its first call) to the as-of
    day, from the var stage_window_days (7) days ending on that day: not_integrated (no successful call ever) / dormant (no call in the window) / production
    (window events / window days > var production_daily_events) / sandbox. previous_stage and
    is_stage_change make entering and leaving a stage visible. Incremental like the usage facts
    (dbt's delete+insert on stage_date): a run rebuilds the days from the as-of day minus var
    incremental_lookback_days. A full build slides the window along every developer's days; an
    incremental run sums, for each rebuilt day only, the usage of its window, and takes the
    previous stage of the first rebuilt day from the row this table already holds for the day
    before (days before the lookback are final), so it reads a day or two of developers instead of
    the window's worth. Both give the rows of a full refresh (tests/dbt checks it). Rows are
    written in day order.
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
        indexes=[{'columns': ['stage_date']}],
    )
}}

{%- set start = "cast('" ~ incremental_start_str() ~ "' as date)" %}
{%- set window_days = var('stage_window_days') | int %}
{%- if is_incremental() %}
    {%- set window_start = dbt.dateadd('day', -(window_days - 1), start) %}
{%- else %}
    {%- set window_start = start %}
{%- endif %}

with

int_developers_and_callers as (

    select * from {{ ref('int_developers_and_callers') }}

),

int_developers_usage_summarized as (

    select * from {{ ref('int_developers_usage_summarized') }}

),

fct_developer_daily_usage as (

    select * from {{ ref('fct_developer_daily_usage') }}

),

developers as (

    select
        signups.developer_id,
        usage.first_success_date,
        case
            when usage.first_event_date < signups.signup_date then usage.first_event_date
            else coalesce(signups.signup_date, usage.first_event_date)
        end as first_day
    from int_developers_and_callers as signups
    left join int_developers_usage_summarized as usage
        on signups.developer_id = usage.developer_id
    where coalesce(signups.signup_date, {{ as_of_date() }}) <= {{ as_of_date() }}

),

calendar as (

    {%- if is_incremental() %}
        {{ day_series(start, as_of_date()) }}
    {%- else %}
        {{ day_series('(select min(first_day) from developers)', as_of_date()) }}
    {%- endif %}

),

usage_in_scope as (

    select
        developer_id,
        usage_date,
        events
    from fct_developer_daily_usage
    where
        usage_date <= {{ as_of_date() }}
        and usage_date >= {{ window_start }}

),

developer_days as (

    select
        developers.developer_id,
        calendar.date_day as stage_date,
        developers.first_success_date
    from developers
    inner join calendar
        on developers.first_day <= calendar.date_day

),

{% if is_incremental() %}

    windowed as (

        -- each rebuilt day with the usage of the window that ends on it
        select
            developer_days.developer_id,
            developer_days.stage_date,
            developer_days.first_success_date,
            cast(coalesce(sum(
                case
                    when usage_in_scope.usage_date = developer_days.stage_date
                        then usage_in_scope.events
                end
            ), 0) as bigint) as events,
            cast(coalesce(sum(usage_in_scope.events), 0) as bigint) as window_events
        from developer_days
        left join usage_in_scope
            on
                developer_days.developer_id = usage_in_scope.developer_id
                and usage_in_scope.usage_date <= developer_days.stage_date
                and usage_in_scope.usage_date
                >= {{ dbt.dateadd('day', -(window_days - 1), 'developer_days.stage_date') }}
        group by
            developer_days.developer_id,
            developer_days.stage_date,
            developer_days.first_success_date

    ),

{% else %}

    developer_usage as (

        select
            developer_days.developer_id,
            developer_days.stage_date,
            developer_days.first_success_date,
            coalesce(usage_in_scope.events, 0) as events
        from developer_days
        left join usage_in_scope
            on
                developer_days.developer_id = usage_in_scope.developer_id
                and developer_days.stage_date = usage_in_scope.usage_date

    ),

    windowed as (

        select
            *,
            cast(sum(events) over (
                partition by developer_id
                order by stage_date
                rows between {{ window_days - 1 }} preceding and current row
            ) as bigint) as window_events
        from developer_usage

    ),

{% endif %}

staged as (

    select
        *,
        case
            when first_success_date is null or first_success_date > stage_date
                then 'not_integrated'
            when window_events = 0 then 'dormant'
            when window_events > {{ window_days }} * {{ var('production_daily_events') }}
                then 'production'
            else 'sandbox'
        end as stage
    from windowed

),

{% if is_incremental() %}

    stage_before_rebuilt_days as (

        select
            developer_id,
            stage
        from {{ this }}
        where stage_date = {{ dbt.dateadd('day', -1, start) }}

    ),

    with_previous as (

        select
            staged.*,
            case
                when staged.stage_date = {{ start }} then stage_before_rebuilt_days.stage
                else lag(staged.stage) over (
                    partition by staged.developer_id order by staged.stage_date
                )
            end as previous_stage
        from staged
        left join stage_before_rebuilt_days
            on staged.developer_id = stage_before_rebuilt_days.developer_id

    ),

{% else %}

    with_previous as (

        select
            *,
            lag(stage) over (partition by developer_id order by stage_date) as previous_stage
        from staged

    ),

{% endif %}

final as (

    select
        developer_id,
        stage_date,
        stage,
        previous_stage,
        previous_stage is null or stage != previous_stage as is_stage_change,
        events,
        window_events,
        first_success_date is not null and first_success_date <= stage_date as has_succeeded
    from with_previous
    where stage_date >= {{ start }}

)

select * from final
order by stage_date
