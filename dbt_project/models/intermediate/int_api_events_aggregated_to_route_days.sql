{#
    Developer x day x route: the one pass over the events that normalises routes (regex work),
    so route adoption, distinct routes per day, top routes and unused features never rescan
    events. Incremental: a run rebuilds only the days from incremental_start_date() on.
#}
{{
    config(
        materialized='incremental',
        incremental_strategy='append',
        on_schema_change='fail',
        pre_hook="{{ delete_from_incremental_start('usage_date') }}",
        indexes=[{'columns': ['usage_date']}],
    )
}}

{%- set start = incremental_start_date('usage_date') %}

with

stg_raw__api_events as (

    select * from {{ ref('stg_raw__api_events') }}

),

events_in_scope as (

    select *
    from stg_raw__api_events
    where
        occurred_at < {{ as_of_end_timestamp() }}
        {%- if start is not none %}
            and occurred_at >= {{ utc_timestamp_literal(start) }}
        {%- endif %}

),

final as (

    select
        developer_id,
        occurred_date as usage_date,
        route,
        count(*) as events,
        count(case when is_successful then 1 end) as successful_events,
        count(case when status_code = 429 then 1 end) as events_429,
        min(occurred_at) as first_event_at,
        max(occurred_at) as last_event_at
    from events_in_scope
    group by developer_id, occurred_date, route

)

select * from final
