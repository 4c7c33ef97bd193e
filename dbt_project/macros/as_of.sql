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
    The Monday of the week holding a 'YYYY-MM-DD' day (weeks start on Monday), as 'YYYY-MM-DD':
    computed here so the bound is a constant (PostgreSQL's date_trunc on a date goes through
    timestamptz, a stable function evaluated for every row it filters).
#}
{% macro week_start_str(day_str) -%}
    {%- set d = modules.datetime.datetime.strptime(day_str, '%Y-%m-%d').date() -%}
    {{- return((d - modules.datetime.timedelta(days=d.weekday())).isoformat()) -}}
{%- endmacro %}

{# The Monday of the as-of day's week, as a SQL date. #}
{% macro as_of_week() -%}
    cast('{{ week_start_str(as_of_date_str()) }}' as date)
{%- endmacro %}

{# The first day of the as-of day's month, as a SQL date (a constant, like as_of_week). #}
{% macro as_of_month() -%}
    cast('{{ as_of_date_str()[:8] }}01' as date)
{%- endmacro %}

{#
    The first day a daily run rebuilds, as 'YYYY-MM-DD': the as-of day minus var
    incremental_lookback_days, so events that landed after a day was built are picked up. With
    grain 'week', the Monday of that day's week.
#}
{% macro lookback_start_str(grain='day') -%}
    {%- set first = as_of_minus_str(var('incremental_lookback_days') | int) -%}
    {{- return(week_start_str(first) if grain == 'week' else first) -}}
{%- endmacro %}

{#
    The first day an incremental run of a day-grained model rebuilds (lookback_start_str()). A full
    refresh has no lower bound ('0001-01-01'). One plain condition either way (no Jinja branch
    inside a WHERE clause). The models use dbt's own delete+insert on their day column: the days
    from this one to the as-of day are deleted and inserted again, older days are kept.
#}
{% macro incremental_start_str() -%}
    {%- if is_incremental() -%}
        {{- return(lookback_start_str()) -}}
    {%- endif -%}
    {{- return('0001-01-01') -}}
{%- endmacro %}

{#
    incremental_predicates for dbt's delete+insert on a day (or week) column. dbt deletes the days
    present in the new rows (`where day in (select distinct day from <new rows>)`); PostgreSQL
    cannot know that subquery holds a day or two and reads the whole table to find them. Bounding
    the deleted rows by the first day a run rebuilds lets it read only those days through the
    model's index. dbt renders config when it parses, with the run's vars (a change of vars
    re-parses); with as_of_date unset, a parse kept from an earlier day names an earlier day, still
    a bound every deleted row meets. Spark's insert_overwrite ignores it.
#}
{% macro rebuilt_days_predicate(column, grain='day') -%}
    {{- return(["DBT_INTERNAL_DEST." ~ column ~ " >= cast('" ~ lookback_start_str(grain)
        ~ "' as date)"]) -}}
{%- endmacro %}

{#
    Pre-hook of int_route_weeks_aggregated_to_routes: on PostgreSQL, an incremental run first
    deletes the totals built for another as-of week (a new week, or a backfill of an earlier one),
    so the model rebuilds them and the table holds one week's totals, as a full refresh does.
    Spark's Parquet tables take no DELETE: there each week is a partition and readers pick theirs.
#}
{% macro drop_totals_of_other_weeks() -%}
    {{ return(adapter.dispatch('drop_totals_of_other_weeks', 'onramp')()) }}
{%- endmacro %}

{% macro default__drop_totals_of_other_weeks() -%}
    {%- if is_incremental() -%}
        delete from {{ this }} where built_for_week <> {{ as_of_week() }}
    {%- else -%}
        select 1
    {%- endif -%}
{%- endmacro %}

{% macro spark__drop_totals_of_other_weeks() -%}
    select 1
{%- endmacro %}
