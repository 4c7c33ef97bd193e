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

{# Spark's timestamp is an instant (timestamp_ltz); the literal's offset makes it UTC midnight. #}
{% macro spark__utc_timestamp_literal(date_str) -%}
    cast('{{ date_str }} 00:00:00+00:00' as timestamp)
{%- endmacro %}

{# The type of an instant: timestamp with time zone (Spark's timestamp is one). #}
{% macro type_timestamptz() -%}
    {{ return(adapter.dispatch('type_timestamptz', 'onramp')()) }}
{%- endmacro %}

{% macro default__type_timestamptz() -%}
    timestamp with time zone
{%- endmacro %}

{% macro spark__type_timestamptz() -%}
    timestamp
{%- endmacro %}

{# The UTC calendar day of a timestamp with time zone, whatever the session time zone. #}
{% macro utc_date(column) -%}
    {{ return(adapter.dispatch('utc_date', 'onramp')(column)) }}
{%- endmacro %}

{% macro default__utc_date(column) -%}
    cast(timezone('UTC', {{ column }}) as date)
{%- endmacro %}

{# Spark casts an instant to the session time zone's day: shift it to UTC wall time first. #}
{% macro spark__utc_date(column) -%}
    cast(to_utc_timestamp({{ column }}, current_timezone()) as date)
{%- endmacro %}

{#
    The UTC day of a raw event (raw.api_events): computed from occurred_at on PostgreSQL (a BRIN
    range scan on occurred_at does the pruning there); on Spark the table is partitioned by that
    day (event_date, set by the loader), and reading the partition column lets Spark skip the
    days a run does not rebuild.
#}
{% macro raw_event_date() -%}
    {{ return(adapter.dispatch('raw_event_date', 'onramp')()) }}
{%- endmacro %}

{% macro default__raw_event_date() -%}
    {{ utc_date('occurred_at') }}
{%- endmacro %}

{% macro spark__raw_event_date() -%}
    event_date
{%- endmacro %}

{#
    An extra condition on stg_raw__api_events' occurred_date, for the usage models that read the
    events from the day start_str: on Spark it prunes raw.api_events' day partitions (a filter on
    occurred_at alone reads every partition); on PostgreSQL the occurred_at range already uses
    the BRIN index, and the condition is `true`.
#}
{% macro raw_event_days_from(start_str, column='occurred_date') -%}
    {{ return(adapter.dispatch('raw_event_days_from', 'onramp')(start_str, column)) }}
{%- endmacro %}

{% macro default__raw_event_days_from(start_str, column) -%}
    true
{%- endmacro %}

{% macro spark__raw_event_days_from(start_str, column) -%}
    {{ column }} >= cast('{{ start_str }}' as date) and {{ column }} <= {{ as_of_date() }}
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

{% macro spark__normalize_route(path) -%}
    {#- Java regular expressions; regexp_replace replaces every match (no 'g' flag) -#}
    regexp_replace(
        {{ dbt.split_part(dbt.split_part(path, "'?'", 1), "'#'", 1) }},
        '/([0-9]+|[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}|[0-9a-fA-F]{16,})(?=/|$)',
        '/{id}'
    )
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

{% macro spark__day_series(start_date, end_date) -%}
    select explode(sequence(cast({{ start_date }} as date), cast({{ end_date }} as date))) as date_day
{%- endmacro %}

{# Pre-hook of the heavy models (dbt_project.yml): more memory for their sorts and hashes, for this
   transaction only. #}
{% macro set_work_mem() -%}
    {{ return(adapter.dispatch('set_work_mem', 'onramp')()) }}
{%- endmacro %}

{% macro default__set_work_mem() -%}
    select 1
{%- endmacro %}

{# Nothing to set on Spark: an empty hook is not run at all. #}
{% macro spark__set_work_mem() -%}
{%- endmacro %}

{% macro postgres__set_work_mem() -%}
    {%- if var('work_mem', none) -%}
        set local work_mem = '{{ var("work_mem") }}'
    {%- else -%}
        select 1
    {%- endif -%}
{%- endmacro %}

{# The values of a group joined by delimiter (a SQL string literal), in sorted order. #}
{% macro sorted_listagg(column, delimiter) -%}
    {{ return(adapter.dispatch('sorted_listagg', 'onramp')(column, delimiter)) }}
{%- endmacro %}

{% macro default__sorted_listagg(column, delimiter) -%}
    {{ dbt.listagg(column, delimiter, 'order by ' ~ column) }}
{%- endmacro %}

{# dbt-spark's listagg drops the order by: sort the collected values instead. #}
{% macro spark__sorted_listagg(column, delimiter) -%}
    array_join(array_sort(collect_list({{ column }})), {{ delimiter }})
{%- endmacro %}

{#
    A condition on raw event days for seg_incident_affected's range join (events between an
    incident's start and end): `true` on PostgreSQL, which runs the join as one BRIN range scan
    per incident; on Spark, the event day must be one of the incidents' UTC days, which turns into
    a semi-join on the event_date partition that Spark prunes by (dynamic partition pruning)
    instead of reading every day of events.
#}
{% macro raw_event_days_of_ranges(day_column, ranges, start_column, end_column) -%}
    {{ return(adapter.dispatch('raw_event_days_of_ranges', 'onramp')(
        day_column, ranges, start_column, end_column)) }}
{%- endmacro %}

{% macro default__raw_event_days_of_ranges(day_column, ranges, start_column, end_column) -%}
    true
{%- endmacro %}

{% macro spark__raw_event_days_of_ranges(day_column, ranges, start_column, end_column) -%}
    {{ day_column }} in (
        select explode(sequence({{ utc_date(start_column) }}, {{ utc_date(end_column) }}))
        from {{ ranges }}
    )
{%- endmacro %}
