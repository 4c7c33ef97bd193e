{#
    Schemas are exactly staging / intermediate / marts / segments (not <target>_staging):
    email_sync, Dagster and BI read them by name, whatever the profile's default schema is.
#}
{% macro generate_schema_name(custom_schema_name, node) -%}
    {%- if custom_schema_name is none -%}
        {{ target.schema }}
    {%- else -%}
        {{ custom_schema_name | trim }}
    {%- endif -%}
{%- endmacro %}
