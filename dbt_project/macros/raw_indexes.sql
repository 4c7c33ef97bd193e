{#
    on-run-start: a BRIN index on raw.api_events (occurred_at), so the incremental usage models
    and seg_incident_affected read only the days they need instead of every event. BRIN because
    loads append events roughly in time order: the index is a few pages, costs next to nothing
    to build or maintain, and never slows COPY down. Created only when missing (checked in the
    catalog): `create index if not exists` would take a SHARE lock on the table on every run,
    cancelling a running autovacuum, and a cancelled BRIN summarization leaves ranges that match
    every scan (see ingest/raw_schema.sql).
#}
{% macro ensure_raw_event_index() %}
    {{ return(adapter.dispatch('ensure_raw_event_index', 'onramp')()) }}
{% endmacro %}

{# Other warehouses prune by partition or file statistics instead. #}
{% macro default__ensure_raw_event_index() %}
    select 1
{% endmacro %}

{# Spark prunes raw.api_events by its event_date partitions: nothing to create, no statement. #}
{% macro spark__ensure_raw_event_index() %}
{% endmacro %}

{% macro postgres__ensure_raw_event_index() %}
    {%- set relation = source('raw', 'api_events') -%}
    do $$
    begin
        if to_regclass('{{ relation.schema }}.{{ relation.identifier }}') is not null
            and to_regclass('{{ relation.schema }}.api_events_occurred_at_brin') is null then
            create index api_events_occurred_at_brin on {{ relation }} using brin (occurred_at);
        end if;
    end
    $$
{% endmacro %}
