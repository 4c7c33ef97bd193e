{#
    Generic test: `column_name` is unique among the rows whose `timestamp_column` falls in the days
    an incremental build rebuilds (as-of day minus incremental_lookback_days, on). Older days
    were checked when they landed; checking 10M events on every build would cost as much as the
    build. raw.api_events' unique index on event_id guarantees it anyway; this catches any other
    path that writes events. With `day_column` (the UTC day of timestamp_column, a partition
    column on Spark) the same days are also selected by day, so Spark reads only their partitions.
#}
{% test unique_in_recent_days(model, column_name, timestamp_column, day_column=none) %}

{%- set start = lookback_start_str() %}

select {{ column_name }}
from {{ model }}
where
    {{ timestamp_column }} >= {{ utc_timestamp_literal(start) }}
    {%- if day_column is not none %}
    and {{ day_column }} >= cast('{{ start }}' as date)
    {%- endif %}
group by {{ column_name }}
having count(*) > 1

{% endtest %}
