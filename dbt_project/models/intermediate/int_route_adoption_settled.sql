{#
    Developer x route over the settled route-days only (before as-of minus var
    incremental_lookback_days, see settled_before_str()): days no later run rebuilds. A run merges
    the days that became settled since the last one into the kept rows (first/last call: the
    earlier/later one; counts: added) instead of re-reading every route-day, and
    fct_route_adoption adds the recent days on top. The pre-hook empties the table when the as-of
    date moved back (kept days no longer settled), and the run then rebuilds it from every day.
    No index: the merge deletes and inserts a third of the rows each day, which a hash join does
    in one pass; maintaining a unique btree on (developer_id, route) cost more than the merge.
#}
{{
    config(
        materialized='incremental',
        incremental_strategy='delete+insert',
        unique_key=['developer_id', 'route'],
        on_schema_change='fail',
        pre_hook="{{ reset_settled_aggregate('last_call_date') }}",
    )
}}

{%- set merged_through = settled_through_date('last_call_date') %}

with

int_api_events_aggregated_to_route_days as (

    select * from {{ ref('int_api_events_aggregated_to_route_days') }}

),

newly_settled as (

    select
        developer_id,
        route,
        min(first_event_at) as first_call_at,
        max(last_event_at) as last_call_at,
        min(usage_date) as first_call_date,
        max(usage_date) as last_call_date,
        count(*) as active_days,
        cast(sum(events) as bigint) as events,
        cast(sum(successful_events) as bigint) as successful_events
    from int_api_events_aggregated_to_route_days
    where
        usage_date > cast('{{ merged_through or full_refresh_start_str() }}' as date)
        and usage_date < cast('{{ settled_before_str() }}' as date)
    group by developer_id, route

),

kept as (

    {%- if merged_through is not none %}
        select * from {{ this }}
    {%- else %}
        select * from newly_settled
        where false
    {%- endif %}

),

final as (

    select
        newly_settled.developer_id,
        newly_settled.route,
        least(
            newly_settled.first_call_at,
            coalesce(kept.first_call_at, newly_settled.first_call_at)
        ) as first_call_at,
        newly_settled.last_call_at,
        least(
            newly_settled.first_call_date,
            coalesce(kept.first_call_date, newly_settled.first_call_date)
        ) as first_call_date,
        newly_settled.last_call_date,
        newly_settled.active_days + coalesce(kept.active_days, 0) as active_days,
        cast(newly_settled.events + coalesce(kept.events, 0) as bigint) as events,
        cast(
            newly_settled.successful_events + coalesce(kept.successful_events, 0) as bigint
        ) as successful_events
    from newly_settled
    left join kept
        on
            newly_settled.developer_id = kept.developer_id
            and newly_settled.route = kept.route

)

select * from final
