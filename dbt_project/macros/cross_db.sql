{#
    Engine-specific SQL lives here, behind adapter.dispatch, so the project can move to another
    warehouse by adding `<adapter>__` versions of these macros. Everything else uses dbt's own
    cross-database macros (dbt.dateadd, dbt.datediff, dbt.date_trunc, dbt.split_part, ...).
#}

{# A UTC midnight as a timestamp-with-time-zone literal (comparable with raw occurred_at). #}
{% macro utc_timestamp_literal(date_str) -%}
    {{ return(adapter.dispatch('utc_timestamp_literal', 'onramp')(date_str)) }}
{%- endmacro %}

{% macro default__utc_timestamp_literal(date_str) -%}
    cast('{{ date_str }} 00:00:00+00:00' as timestamp with time zone)
{%- endmacro %}

{# The UTC calendar day of a timestamp with time zone, whatever the session time zone. #}
{% macro utc_date(column) -%}
    {{ return(adapter.dispatch('utc_date', 'onramp')(column)) }}
{%- endmacro %}

{% macro default__utc_date(column) -%}
    cast(timezone('UTC', {{ column }}) as date)
{%- endmacro %}

{# Continuous percentile of an expression within a group (p in 0..1). #}
{% macro percentile(expression, p) -%}
    {{ return(adapter.dispatch('percentile', 'onramp')(expression, p)) }}
{%- endmacro %}

{% macro default__percentile(expression, p) -%}
    percentile_cont({{ p }}) within group (order by {{ expression }})
{%- endmacro %}

{#
    The route template of a request path: the query string and fragment are dropped and path
    segments that are numeric ids, UUIDs or long hex tokens (16+ hex digits) become {id}:
    /v1/users/123?x=1 -> /v1/users/{id}.
#}
{% macro normalize_route(path) -%}
    {{ return(adapter.dispatch('normalize_route', 'onramp')(path)) }}
{%- endmacro %}

{% macro default__normalize_route(path) -%}
    regexp_replace(
        {{ dbt.split_part(dbt.split_part(path, "'?'", 1), "'#'", 1) }},
        '/([0-9]+|[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}|[0-9a-fA-F]{16,})(?=/|$)',
        '/{id}',
        'g'
    )
{%- endmacro %}

{# One row per calendar day from start to end (both SQL date expressions), column date_day. #}
{% macro day_series(start_date, end_date) -%}
    {{ return(adapter.dispatch('day_series', 'onramp')(start_date, end_date)) }}
{%- endmacro %}

{% macro default__day_series(start_date, end_date) -%}
    select cast(d as date) as date_day
    from generate_series(
        cast({{ start_date }} as timestamp), cast({{ end_date }} as timestamp), interval '1 day'
    ) as d
{%- endmacro %}

{# Pre-hook of every model: more memory for its sorts and hashes, for this transaction only. #}
{% macro set_work_mem() -%}
    {{ return(adapter.dispatch('set_work_mem', 'onramp')()) }}
{%- endmacro %}

{% macro default__set_work_mem() -%}
    select 1
{%- endmacro %}

{% macro postgres__set_work_mem() -%}
    {%- if var('work_mem', none) -%}
        set local work_mem = '{{ var("work_mem") }}'
    {%- else -%}
        select 1
    {%- endif -%}
{%- endmacro %}
