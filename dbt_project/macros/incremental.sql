{#
    The first day an incremental run of a day-grained model rebuilds: the last day already in the
    table (or the as-of day, when the table runs ahead of it) minus var incremental_lookback_days,
    so late events for those days are picked up. The model deletes every row from that day on
    (pre-hook `delete_from_incremental_start`) and inserts the days from it to the as-of day, which
    also removes days after a moved-back as-of date. On a full refresh it returns none.

    With usage_model (a developer x day model derived from developer x day usage, e.g.
    fct_developer_stage_daily), the already-built days of that range are first checked against
    usage_model's rows (first_changed_developer_day), which that run has already rebuilt: a day
    whose stored per-developer event counts all still match is kept.

    With events_column (a model that counts every event of its days), the already-built days of
    that range are first checked against the events that landed (first_changed_day): a day whose
    stored event count still equals the count of its events is kept, so a daily run rebuilds
    only the new day unless late events arrived for the last ones. Events are append-only and
    unique by event_id (the loader's unique index), so an equal count means the same events.
#}
{% macro incremental_start_date(date_column, events_column=none, usage_model=none) -%}
    {%- if not execute or not is_incremental() -%}
        {{ return(none) }}
    {%- endif -%}
    {{ return(rebuild_start_date(this, date_column, events_column, usage_model)) }}
{%- endmacro %}

{#
    The rebuild start of incremental_start_date() for any day-grained relation (none when it does
    not exist or is empty), as 'YYYY-MM-DD'. A model's body and its delete pre-hook both ask, and
    int_request_paths_normalized asks for its downstream route-days table: the checks (one BRIN
    range scan of raw events each) run once per relation and dbt invocation, kept in the run's
    graph dict.
#}
{% macro rebuild_start_date(relation, date_column, events_column=none, usage_model=none) -%}
    {%- if relation is none -%}
        {{ return(none) }}
    {%- endif -%}
    {%- set memo = graph.setdefault('onramp_rebuild_start', {}) -%}
    {%- set key = [invocation_id, relation, date_column, events_column, usage_model, as_of_date_str()]
        | join('|') -%}
    {%- if key not in memo -%}
        {%- set start = checked_rebuild_start_date(relation, date_column, events_column, usage_model) -%}
        {%- do memo.update({key: start}) -%}
    {%- endif -%}
    {{ return(memo[key]) }}
{%- endmacro %}

{% macro checked_rebuild_start_date(relation, date_column, events_column, usage_model) -%}
    {%- set sql -%}
        select max({{ date_column }}) from {{ relation }}
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
    {%- if usage_model is not none and last_day <= as_of -%}
        {%- set start = first_changed_developer_day(
            relation, date_column, events_column, usage_model, start, last_day
        ) -%}
    {%- elif events_column is not none and last_day <= as_of -%}
        {%- set start = first_changed_day(relation, date_column, events_column, start, last_day) -%}
    {%- endif -%}
    {{ return(start.isoformat()) }}
{%- endmacro %}

{#
    The table of another model of this project, or none when it is not built yet: for a model
    that must know what a downstream model will rebuild (it cannot ref() it without a cycle).
#}
{% macro model_relation(model_name) -%}
    {%- set node = graph.nodes.get('model.' ~ project_name ~ '.' ~ model_name) -%}
    {%- if node is none -%}
        {{ return(none) }}
    {%- endif -%}
    {{ return(adapter.get_relation(database=node.database, schema=node.schema, identifier=node.alias)) }}
{%- endmacro %}

{# Pre-hook of the incremental models: drop the days that this run rebuilds. #}
{% macro delete_from_incremental_start(date_column, events_column=none, usage_model=none) -%}
    {%- set start = incremental_start_date(date_column, events_column, usage_model) -%}
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
{% macro first_changed_day(relation, date_column, events_column, start, last_day) -%}
    {%- set next_day = last_day + modules.datetime.timedelta(days=1) -%}
    {%- set sql -%}
        with

        built as (
            select
                {{ date_column }} as day,
                sum({{ events_column }}) as events
            from {{ relation }}
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
    {{ return(first_changed_or(sql, next_day)) }}
{%- endmacro %}

{#
    The first day from `start` to `last_day` on which a developer's stored event count
    (events_column of relation, per developer_id and date_column) differs from usage_model's
    (a developer x usage_date model with `events`, already rebuilt by this run), or the day after
    last_day when none does. Only developers the stage model covers count: signed up by the as-of
    day, or without a sign-up date (usage of unknown developers is in no developer x day model).
#}
{% macro first_changed_developer_day(relation, date_column, events_column, usage_model, start, last_day) -%}
    {%- set next_day = last_day + modules.datetime.timedelta(days=1) -%}
    {%- set sql -%}
        with

        usage as (
            select
                developer_id,
                usage_date,
                events
            from {{ ref(usage_model) }}
            where
                usage_date >= cast('{{ start.isoformat() }}' as date)
                and usage_date <= cast('{{ last_day.isoformat() }}' as date)
        ),

        built as (
            select
                developer_id,
                {{ date_column }} as day,
                {{ events_column }} as events
            from {{ relation }}
            where
                {{ date_column }} >= cast('{{ start.isoformat() }}' as date)
                and {{ date_column }} <= cast('{{ last_day.isoformat() }}' as date)
        ),

        developers as (
            select developer_id
            from {{ ref('stg_raw__developers') }}
            where coalesce(signup_date, {{ as_of_date() }}) <= {{ as_of_date() }}
        )

        -- full outer joins only: PostgreSQL runs them as hash or merge joins, never as the
        -- nested loop that a stale estimate of one row for the newest days would pick
        select min(coalesce(usage.usage_date, built.day))
        from usage
        full outer join built
            on
                usage.developer_id = built.developer_id
                and usage.usage_date = built.day
        full outer join developers
            on coalesce(usage.developer_id, built.developer_id) = developers.developer_id
        where
            (
                usage.developer_id is not null
                and developers.developer_id is not null
                and built.events is distinct from usage.events
            )
            or (usage.developer_id is null and built.events > 0)
    {%- endset -%}
    {{ return(first_changed_or(sql, next_day)) }}
{%- endmacro %}

{# The date `sql` (one row, one column) returns, or `otherwise` when it returns null. #}
{% macro first_changed_or(sql, otherwise) -%}
    {%- set changed = run_query(sql).columns[0].values()[0] -%}
    {%- if changed is none -%}
        {{ return(otherwise) }}
    {%- endif -%}
    {%- if changed is string -%}
        {%- set changed = modules.datetime.datetime.strptime(changed[:10], '%Y-%m-%d').date() -%}
    {%- endif -%}
    {{ return(changed) }}
{%- endmacro %}
