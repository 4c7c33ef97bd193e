{#
    Request path -> route template, one row per distinct path seen. The route regex is the
    costliest expression of a full build; this lookup runs it once per distinct path instead
    of once per call. Incremental: a run adds the paths first seen in the days it scans: the days
    int_api_events_aggregated_to_route_days rebuilds in the same run (its own check, on its table:
    new days, and kept days whose events changed), or from the last first-seen day on when that
    table is not built yet.
#}
{{
    config(
        materialized='incremental',
        incremental_strategy='append',
        on_schema_change='fail',
        indexes=[{'columns': ['request_path'], 'unique': True}],
    )
}}

{%- set start = incremental_start_date('first_seen_date') %}
{%- if start is not none %}
    {%- set route_days_start = rebuild_start_date(
        model_relation('int_api_events_aggregated_to_route_days'), 'usage_date', 'events'
    ) %}
    {%- if route_days_start is not none %}
        {#- every event up to the last first-seen day (as-of capped) was scanned by earlier runs -#}
        {%- set after_scanned = (
            modules.datetime.datetime.strptime(start, '%Y-%m-%d').date()
            + modules.datetime.timedelta(days=var('incremental_lookback_days') | int + 1)
        ).isoformat() %}
        {%- set start = [route_days_start, after_scanned] | min %}
    {%- endif %}
{%- endif %}

with

stg_raw__api_events as (

    select * from {{ ref('stg_raw__api_events') }}

),

paths_in_scope as (

    select
        coalesce(request_path, '') as request_path,
        min(occurred_date) as first_seen_date
    from stg_raw__api_events
    where
        occurred_at < {{ as_of_end_timestamp() }}
        and occurred_at >= {{ utc_timestamp_literal(start or full_refresh_start_str()) }}
    group by coalesce(request_path, '')

),

new_paths as (

    select * from paths_in_scope
    {%- if start is not none %}
        where not exists (
            select 1 from {{ this }} as known
            where known.request_path = paths_in_scope.request_path
        )
    {%- endif %}

),

final as (

    select
        request_path,
        case
            when request_path = '' then '(none)'
            else {{ normalize_route('request_path') }}
        end as route,
        first_seen_date
    from new_paths

)

select * from final
