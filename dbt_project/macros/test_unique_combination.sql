{#
    Generic test for the grain of a model: no row has a null in `columns` and no two rows share
    the same values of `columns` (unique + not_null in one scan). With `day_column`, an
    incremental run checks only the days it rebuilt (the as-of day and incremental_lookback_days
    days before it, see lookback_start_str()), so the test costs as little as the run; a full
    refresh checks every row. With `grain: week`, `day_column` holds the Monday of a week and the
    weeks from the one holding the first rebuilt day are checked.
#}
{% test unique_combination(model, columns, day_column=none, grain='day') %}
{%- set first = lookback_start_str(grain) %}

with

scoped as (

    select {{ columns | join(', ') }}
    from {{ model }}
    {%- if day_column is not none and not flags.FULL_REFRESH %}
    where {{ day_column }} >= cast('{{ first }}' as date)
    {%- endif %}

)

select {{ columns | join(', ') }}, 'null key' as problem
from scoped
where {% for column in columns %}{{ column }} is null{{ " or " if not loop.last }}{% endfor %}

union all

select {{ columns | join(', ') }}, 'duplicate key' as problem
from scoped
group by {{ columns | join(', ') }}
having count(*) > 1

{% endtest %}
