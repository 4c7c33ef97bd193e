{#
    Weekly sign-up cohorts for the funnel dashboard: the share of each cohort that reached its
    first call, sandbox and production within 1, 7 and 30 days of signing up, and the median time
    to first Hello World. Cohorts younger than 30 days are still filling up (is_complete_30d).
#}
with

dim_developers as (

    select * from {{ ref('dim_developers') }}

),

developers as (

    select
        cast({{ dbt.date_trunc('week', 'signup_date') }} as date) as cohort_week,
        ttfhw_seconds,
        {{ dbt.datediff('signup_date', utc_date('first_call_at'), 'day') }}
            as days_to_first_call,
        {{ dbt.datediff('signup_date', 'first_sandbox_date', 'day') }}
            as days_to_sandbox,
        {{ dbt.datediff('signup_date', 'first_production_date', 'day') }}
            as days_to_production
    from dim_developers
    where signup_date is not null

),

final as (

    select
        cohort_week,
        count(*) as signups,
        {%- for milestone in ['first_call', 'sandbox', 'production'] %}
            {%- for days in [1, 7, 30] %}
                1.0 * count(case when days_to_{{ milestone }} <= {{ days }} then 1 end)
                / count(*) as share_{{ milestone }}_{{ days }}d,
            {%- endfor %}
        {%- endfor %}
        {{ percentile('ttfhw_seconds / 3600.0', 0.5) }} as median_ttfhw_hours,
        {{ dbt.dateadd('day', 36, 'cohort_week') }} <= {{ as_of_date() }} as is_complete_30d
    from developers
    group by cohort_week

)

select * from final
