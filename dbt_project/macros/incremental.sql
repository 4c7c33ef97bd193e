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
