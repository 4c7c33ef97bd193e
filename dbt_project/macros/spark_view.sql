{#
    `view_replaced_when_changed`, the staging views' materialization on Spark (dbt_project.yml;
    PostgreSQL keeps dbt's `view`): a view whose stored definition already is the model's SQL,
    with the columns and types that SQL has now, is left as it is instead of being replaced.
    Replacing a view on Spark is a metastore write plus an analysis of the view (0.2-1.4 s each
    on a local build, for the same view); the check costs a `describe extended` and an analysis
    of the query (no data read).
    Anything that differs (text, a column, a type, a table in its place) and --full-refresh
    replace it as dbt-spark does (create_or_replace_view). docs/spark.md, "Per-model overhead".
#}
{% materialization view_replaced_when_changed, adapter='spark' -%}
    {%- set identifier = model['alias'] -%}
    {%- set old_relation = adapter.get_relation(database=database, schema=schema, identifier=identifier) -%}
    {%- if old_relation is not none and old_relation.is_view and not should_full_refresh()
        and spark_view_is_current(old_relation, sql) -%}
        {%- set target_relation = api.Relation.create(
            identifier=identifier, schema=schema, database=database, type='view') -%}
        {{ run_hooks(pre_hooks) }}
        {% call noop_statement('main', 'OK (view unchanged)') -%}
            -- {{ target_relation }} already is this view: nothing to replace
        {%- endcall %}
        {{ run_hooks(post_hooks) }}
        {{ return({'relations': [target_relation]}) }}
    {%- endif -%}
    {{ return(create_or_replace_view()) }}
{%- endmaterialization %}


{#- Whether the Spark view `relation` stores `sql` as its text and has the columns and types
    that `sql` has now (an upstream table whose columns changed makes the stored view stale). -#}
{% macro spark_view_is_current(relation, sql) %}
    {%- set rows = get_columns_in_relation_raw(relation) -%}
    {%- set ns = namespace(in_columns=true, stored=[], text=none) -%}
    {%- for row in rows -%}
        {%- set name = row[0] or '' -%}
        {%- if ns.in_columns and (name == '' or name.startswith('#')) -%}
            {%- set ns.in_columns = false -%}
        {%- elif ns.in_columns -%}
            {%- set ns.stored = ns.stored + [(name | lower, (row[1] or '') | lower)] -%}
        {%- elif name == 'View Original Text' or (name == 'View Text' and ns.text is none) -%}
            {%- set ns.text = row[1] -%}
        {%- endif -%}
    {%- endfor -%}
    {%- if ns.text is none or (ns.text | trim) != (sql | trim) -%}
        {{ return(false) }}
    {%- endif -%}
    {%- set now = [] -%}
    {%- for column in get_column_schema_from_query(sql) -%}
        {%- do now.append((column.name | lower, column.dtype | lower)) -%}
    {%- endfor -%}
    {{ return(now == ns.stored) }}
{% endmacro %}
