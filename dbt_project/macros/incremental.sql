{#
    The first day an incremental run of a day-grained model rebuilds: the last day already in the
    table (or the as-of day, when the table runs ahead of it) minus var incremental_lookback_days,
    so late events for those days are picked up. The model deletes every row from that day on
    (pre-hook `delete_from_incremental_start`) and inserts the days from it to the as-of day, which
    also removes days after a moved-back as-of date. On a full refresh it returns none.

    With events_column (a model that counts every event of its days), the already-built days of
    that range are first checked against the events that landed (first_changed_day): a day whose
    stored event count still equals the count of its events is kept, so a daily run rebuilds
    only the new day unless late events arrived for the last ones. Events are append-only and
    unique by event_id (the loader's unique index), so an equal count means the same events.
#}
{% macro incremental_start_date(date_column, events_column=none) -%}
    {%- if not execute or not is_incremental() -%}
        {{ return(none) }}
    {%- endif -%}
    {%- set sql -%}
        select max({{ date_column }}) from {{ this }}
    {%- endset -%}
    {%- set result = run_query(sql) -%}
    {%- set last_day = result.columns[0].values()[0] if result and result.rows | length else none -%}
    {%- set as_of = modules.datetime.datetime.strptime(as_of_date_str(), '%Y-%m-%d').date() -%}
    {%- if last_day is none -%}
        {{ return(none) }}
    {%- endif -%}
    {%- if last_day is string -%}
        {%- set last_day = modules.datetime.datetime.strptime(last_day[:10], '%Y-%m-%d').date() -%}
    {%- endif -%}
    {%- set newest = [last_day, as_of] | min -%}
    {%- set start = newest - modules.datetime.timedelta(days=var('incremental_lookback_days') | int) -%}
    {%- if events_column is not none and last_day <= as_of -%}
        {%- set start = first_changed_day(date_column, events_column, start, last_day) -%}
    {%- endif -%}
    {{ return(start.isoformat()) }}
{%- endmacro %}

{# Pre-hook of the incremental models: drop the days that this run rebuilds. #}
{% macro delete_from_incremental_start(date_column, events_column=none) -%}
    {%- set start = incremental_start_date(date_column, events_column) -%}
    {%- if start is not none -%}
        delete from {{ this }} where {{ date_column }} >= cast('{{ start }}' as date)
    {%- else -%}
        select 1
    {%- endif -%}
{%- endmacro %}

{#
    Settled days: the days before as-of minus var incremental_lookback_days. No later run (with
    a later as-of date) rebuilds them, so aggregates over them can be kept and merged day by day
    (int_route_adoption_settled) instead of re-read from every route-day on every run.
#}
{% macro settled_before_str() -%}
    {{- return(as_of_minus_str(var('incremental_lookback_days') | int)) -}}
{%- endmacro %}

{#
    The last settled day already merged into a settled aggregate (max of its date_column), or none
    when the run must rebuild it from scratch: a full refresh, an empty table, or an as-of date
    moved back so that kept days are no longer settled.
#}
{% macro settled_through_date(date_column) -%}
    {%- if not execute or not is_incremental() -%}
        {{ return(none) }}
    {%- endif -%}
    {%- set result = run_query('select max(' ~ date_column ~ ') from ' ~ this) -%}
    {%- set last_day = result.columns[0].values()[0] if result and result.rows | length else none -%}
    {%- if last_day is none -%}
        {{ return(none) }}
    {%- endif -%}
    {%- set last_day = (last_day | string)[:10] -%}
    {%- if last_day >= settled_before_str() -%}
        {{ return(none) }}
    {%- endif -%}
    {{ return(last_day) }}
{%- endmacro %}

{# Pre-hook of a settled aggregate: empty it when settled_through_date() says rebuild. #}
{% macro reset_settled_aggregate(date_column) -%}
    {%- if execute and is_incremental() and settled_through_date(date_column) is none -%}
        delete from {{ this }}
    {%- else -%}
        select 1
    {%- endif -%}
{%- endmacro %}

{#
    The lower bound of a full refresh ('0001-01-01': every day), so the time filter of an
    incremental model is one plain condition either way (no Jinja branch inside a WHERE clause,
    which sqlfluff's indentation rule cannot lint the same way for both renderings).
#}
{% macro full_refresh_start_str() -%}
    {{- return('0001-01-01') -}}
{%- endmacro %}

{#
    The first day from `start` to `last_day` whose stored event count (sum of events_column per
    date_column) differs from the count of its events in stg_raw__api_events, or the day after
    last_day when none does. One BRIN range scan over those days of raw events.
#}
{% macro first_changed_day(date_column, events_column, start, last_day) -%}
    {%- set next_day = last_day + modules.datetime.timedelta(days=1) -%}
    {%- set sql -%}
        with

        built as (
            select
                {{ date_column }} as day,
                sum({{ events_column }}) as events
            from {{ this }}
            where
                {{ date_column }} >= cast('{{ start.isoformat() }}' as date)
                and {{ date_column }} <= cast('{{ last_day.isoformat() }}' as date)
            group by {{ date_column }}
        ),

        landed as (
            select
                occurred_date as day,
                count(*) as events
            from {{ ref('stg_raw__api_events') }}
            where
                occurred_at >= {{ utc_timestamp_literal(start.isoformat()) }}
                and occurred_at < {{ utc_timestamp_literal(next_day.isoformat()) }}
            group by occurred_date
        )

        select min(coalesce(built.day, landed.day))
        from built
        full outer join landed
            on built.day = landed.day
        where built.events is distinct from landed.events
    {%- endset -%}
    {%- set changed = run_query(sql).columns[0].values()[0] -%}
    {%- if changed is none -%}
        {{ return(next_day) }}
    {%- endif -%}
    {%- if changed is string -%}
        {%- set changed = modules.datetime.datetime.strptime(changed[:10], '%Y-%m-%d').date() -%}
    {%- endif -%}
    {{ return(changed) }}
{%- endmacro %}
