{#
    The one "today" of the project: var `as_of_date` ('YYYY-MM-DD'), default yesterday in UTC.
    The as-of date is the last complete day of data; events after it are ignored, so a build with
    the same data and the same as-of date always gives the same tables.
#}
{% macro as_of_date_str() -%}
    {%- set raw = var('as_of_date', none) -%}
    {%- if raw is none or (raw | string | trim) == '' -%}
        {%- set yesterday = modules.datetime.datetime.now(modules.pytz.utc).date()
            - modules.datetime.timedelta(days=1) -%}
        {{- return(yesterday.isoformat()) -}}
    {%- endif -%}
    {%- set text = raw | string | trim -%}
    {%- if not modules.re.match('^[0-9]{4}-[0-9]{2}-[0-9]{2}$', text) -%}
        {{ exceptions.raise_compiler_error("var as_of_date must be YYYY-MM-DD, got '" ~ text ~ "'") }}
    {%- endif -%}
    {%- set parsed = modules.datetime.datetime.strptime(text, '%Y-%m-%d') -%}
    {{- return(parsed.date().isoformat()) -}}
{%- endmacro %}

{# The as-of day as a SQL date. #}
{% macro as_of_date() -%}
    cast('{{ as_of_date_str() }}' as date)
{%- endmacro %}

{# The date N days before the as-of day (N may be 0), as 'YYYY-MM-DD'. #}
{% macro as_of_minus_str(days) -%}
    {%- set d = modules.datetime.datetime.strptime(as_of_date_str(), '%Y-%m-%d').date()
        - modules.datetime.timedelta(days=days | int) -%}
    {{- return(d.isoformat()) -}}
{%- endmacro %}

{# The date N days before the as-of day (N may be 0), as a SQL date. #}
{% macro as_of_minus(days) -%}
    cast('{{ as_of_minus_str(days) }}' as date)
{%- endmacro %}

{# The first instant after the as-of day (exclusive upper bound on event times, UTC). #}
{% macro as_of_end_timestamp() -%}
    {%- set d = modules.datetime.datetime.strptime(as_of_date_str(), '%Y-%m-%d').date()
        + modules.datetime.timedelta(days=1) -%}
    {{ utc_timestamp_literal(d.isoformat()) }}
{%- endmacro %}

{#
    The first day an incremental run of a day-grained model rebuilds: the as-of day minus var
    incremental_lookback_days, so events that landed after a day was built are picked up. A full
    refresh has no lower bound ('0001-01-01'). One plain condition either way (no Jinja branch
    inside a WHERE clause). The models use dbt's own delete+insert on their day column: the days
    from this one to the as-of day are deleted and inserted again, older days are kept.
#}
{% macro incremental_start_str() -%}
    {%- if is_incremental() -%}
        {{- return(as_of_minus_str(var('incremental_lookback_days') | int)) -}}
    {%- endif -%}
    {{- return('0001-01-01') -}}
{%- endmacro %}
