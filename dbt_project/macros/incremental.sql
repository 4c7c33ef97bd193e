{#
    The first day an incremental run of a day-grained model rebuilds: the last day already in the
    table (or the as-of day, when the table runs ahead of it) minus var incremental_lookback_days,
    so late events for those days are picked up. The model deletes every row from that day on
    (pre-hook `delete_from_incremental_start`) and inserts the days from it to the as-of day, which
    also removes days after a moved-back as-of date. On a full refresh it returns none.
#}
{% macro incremental_start_date(date_column) -%}
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
    {{ return(start.isoformat()) }}
{%- endmacro %}

{# Pre-hook of the incremental models: drop the days that this run rebuilds. #}
{% macro delete_from_incremental_start(date_column) -%}
    {%- set start = incremental_start_date(date_column) -%}
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
