{#
    The developer x route totals of rows that already hold totals (first_call_at, last_call_at,
    active_days, events, successful_events): the weekly totals summed per pair, and the pair
    totals plus the as-of week's route-days. One select list, so both levels add up alike.
#}
{% macro route_usage_totals() -%}
    min(first_call_at) as first_call_at,
    max(last_call_at) as last_call_at,
    cast(sum(active_days) as bigint) as active_days,
    cast(sum(events) as bigint) as events,
    cast(sum(successful_events) as bigint) as successful_events
{%- endmacro %}
