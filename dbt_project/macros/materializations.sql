{#
    Lean table and view materializations for PostgreSQL, in place of dbt's own: the same result
    (a table or view named after the model, contracts, indexes and hooks as configured) in one
    round trip plus the commit, instead of seven or eight. dbt's table materialization builds
    under a temporary name, renames the old table to a backup, renames the new one into place,
    commits and drops the backup, each its own statement; on a daily run most models compute in
    a fraction of a second, so those round trips were a good part of a run.

    A table is dropped and created again inside one transaction: a reader never sees a half-built
    table (it waits for the commit, about as long as the model takes), and a failed build rolls
    back to the old table. The model must not select from itself
    (none does; an incremental model is the way to build on earlier rows). A contract's column
    check runs first, as in dbt's (get_create_table_as_sql).
#}

{% materialization table, adapter='postgres' %}

    {%- set existing_relation = load_cached_relation(this) -%}
    {%- set target_relation = this.incorporate(type='table') -%}

    {{ run_hooks(pre_hooks, inside_transaction=False) }}

    {% call statement('main') -%}
        {{ onramp_inline_hooks(pre_hooks) }}
        {%- if existing_relation is not none %}
            drop {{ existing_relation.type }} if exists {{ target_relation }} cascade;
        {%- endif %}
        {{ get_create_table_as_sql(False, target_relation, sql) }}
        {%- for index_dict in config.get('indexes', default=[]) %}
            {{ get_create_index_sql(target_relation, index_dict) }};
        {%- endfor %}
    {%- endcall %}

    {{ onramp_finish(target_relation, existing_relation, True, post_hooks) }}

    {{ return({'relations': [target_relation]}) }}

{% endmaterialization %}

{#
    A view: created in place when there is none; replaced in place (create or replace, which keeps
    whatever depends on it) when its columns only grow; dropped and created again when they
    change otherwise (PostgreSQL refuses to replace those), as dbt's own does.
#}
{% materialization view, adapter='postgres' %}

    {%- set existing_relation = load_cached_relation(this) -%}
    {%- set target_relation = this.incorporate(type='view') -%}

    {{ run_hooks(pre_hooks, inside_transaction=False) }}

    {% call statement('main') -%}
        {{ onramp_inline_hooks(pre_hooks) }}
        {%- if existing_relation is not none and existing_relation.type != 'view' %}
            drop {{ existing_relation.type }} if exists {{ target_relation }} cascade;
        {%- endif %}
        {%- if existing_relation is none or existing_relation.type != 'view' %}
            {{ get_create_view_as_sql(target_relation, sql) }}
        {%- else %}
            do $onramp_view$
            begin
                create or replace view {{ target_relation }} as (
                    {{ sql }}
                );
            exception when invalid_table_definition then
                drop view {{ target_relation }} cascade;
                create view {{ target_relation }} as (
                    {{ sql }}
                );
            end
            $onramp_view$
        {%- endif %}
    {%- endcall %}

    {{ onramp_finish(target_relation, existing_relation, True, post_hooks) }}

    {{ return({'relations': [target_relation]}) }}

{% endmaterialization %}

{#
    How every materialization here ends, as dbt's own do: the post-hooks inside the transaction,
    grants and docs, the commit, then the post-hooks outside it.
#}
{% macro onramp_finish(target_relation, existing_relation, full_refresh_mode, post_hooks) -%}
    {{ run_hooks(post_hooks, inside_transaction=True) }}
    {%- set revoke = should_revoke(existing_relation, full_refresh_mode=full_refresh_mode) -%}
    {%- do apply_grants(target_relation, config.get('grants'), should_revoke=revoke) -%}
    {%- do persist_docs(target_relation, model) -%}
    {{ adapter.commit() }}
    {{ run_hooks(post_hooks, inside_transaction=False) }}
{%- endmacro %}

{# The transactional hooks, rendered into the main statement instead of one round trip each. #}
{% macro onramp_inline_hooks(hooks) -%}
    {%- for hook in hooks | selectattr('transaction', 'equalto', True) %}
        {%- set rendered = render(hook.get('sql')) | trim %}
        {%- if rendered | length > 0 %}
            {{ rendered }};
        {%- endif %}
    {%- endfor %}
{%- endmacro %}

{#
    Incremental, as dbt's own, plus one shortcut for the usual run (the table already there, no
    full refresh, strategy `append` or `delete+insert` without incremental_predicates): the
    model's rows go straight into the table in one statement, after the transactional pre-hooks
    (the day-grained models' delete); for delete+insert, a data-modifying CTE first deletes the
    rows whose unique_key the model returns (all parts of one statement see the same snapshot, so
    the model still reads the rows being replaced). dbt's stages the rows in a temporary table
    first and reads four sets of column metadata. The schema check of on_schema_change='fail'
    stays: the model's columns and the table's (names and types, as the contract check compares
    them) must be the same, or the run fails; any other on_schema_change takes dbt's path.
#}
{% materialization incremental, adapter='postgres' -%}

    {%- set existing_relation = load_cached_relation(this) -%}
    {%- set target_relation = this.incorporate(type='table') -%}
    {%- set on_schema_change = incremental_validate_on_schema_change(config.get('on_schema_change'), default='ignore') -%}
    {%- set incremental_strategy = config.get('incremental_strategy') or 'default' -%}
    {%- set unique_key = config.get('unique_key') -%}
    {%- set unique_key = [unique_key] if unique_key is string else unique_key -%}
    {%- set shortcut = existing_relation is not none and not existing_relation.is_view
        and not should_full_refresh() and on_schema_change in ('fail', 'ignore')
        and not (config.get('predicates') or config.get('incremental_predicates'))
        and (incremental_strategy == 'append'
            or (incremental_strategy == 'delete+insert' and unique_key)) -%}
    {%- if not shortcut -%}
        {{ return(dbt.materialization_incremental_default()) }}
    {%- endif -%}

    {%- set target_columns = get_column_schema_from_query('select * from ' ~ target_relation) -%}
    {%- if on_schema_change == 'fail' -%}
        {%- set model_columns = get_column_schema_from_query(sql, config.get('sql_header', none)) -%}
        {%- set described = {'model': [], 'table': []} -%}
        {%- for column in model_columns -%}
            {%- do described['model'].append((column.name | lower) ~ ' ' ~ column.dtype) -%}
        {%- endfor -%}
        {%- for column in target_columns -%}
            {%- do described['table'].append((column.name | lower) ~ ' ' ~ column.dtype) -%}
        {%- endfor -%}
        {%- if (described['model'] | sort) != (described['table'] | sort) -%}
            {{ exceptions.raise_compiler_error(
                "The source and target schemas on this incremental model are out of sync! Model: "
                ~ described['model'] | join(', ') ~ "; table: " ~ described['table'] | join(', ')
                ~ ". on_schema_change is 'fail': run with --full-refresh to rebuild the table."
            ) }}
        {%- endif -%}
    {%- endif -%}
    {%- set quoted = [] -%}
    {%- for column in target_columns -%}
        {%- do quoted.append(adapter.quote(column.name)) -%}
    {%- endfor -%}
    {%- set column_list = quoted | join(', ') -%}

    {{ run_hooks(pre_hooks, inside_transaction=False) }}

    {% call statement('main') -%}
        {{ onramp_inline_hooks(pre_hooks) }}
        {{ config.get('sql_header') or '' }}
        {%- if incremental_strategy == 'delete+insert' %}
            with onramp_model_rows as materialized (
                {{ sql }}
            ),

            onramp_replaced as (
                delete from {{ target_relation }} as onramp_target
                using onramp_model_rows
                where
                    {%- for key in unique_key %}
                        onramp_target.{{ key }} = onramp_model_rows.{{ key }}
                        {{- " and" if not loop.last }}
                    {%- endfor %}
                returning 1
            )

            insert into {{ target_relation }} ({{ column_list }})
            select {{ column_list }}
            from onramp_model_rows
            -- reading the delete's count (an init plan) runs it to the end before the first row
            -- goes in: a unique index on the key never holds the old and the new row at once
            where (select count(*) from onramp_replaced) >= 0
        {%- else %}
            insert into {{ target_relation }} ({{ column_list }})
            select {{ column_list }}
            from (
                {{ sql }}
            ) as onramp_model_rows
        {%- endif %}
    {%- endcall %}

    {{ onramp_finish(target_relation, existing_relation, False, post_hooks) }}

    {{ return({'relations': [target_relation]}) }}

{%- endmaterialization %}
