{# "Customer Success" / "customer-success" / " customer_success " -> customer_success. #}
{% macro normalized_role(column) -%}
    replace(replace(lower(trim(coalesce({{ column }}, ''))), ' ', '_'), '-', '_')
{%- endmacro %}
