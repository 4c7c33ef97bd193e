{#
    Developer x promoted route: the first call to a promoted feature's route was on one of the
    var milestone_window_days (7) days before the as-of day: one email the day after.
#}
with

dim_developers as (

    select * from {{ ref('dim_developers') }}

),

fct_route_adoption as (

    select * from {{ ref('fct_route_adoption') }}

),

stg_raw__endpoints as (

    select * from {{ ref('stg_raw__endpoints') }}

),

final as (

    select
        fct_route_adoption.developer_id || ':' || fct_route_adoption.route as member_key,
        {{ segment_member_columns('dim_developers') }}
        fct_route_adoption.route,
        stg_raw__endpoints.feature_name,
        stg_raw__endpoints.docs_url,
        fct_route_adoption.first_call_date as first_called_date
    from fct_route_adoption
    inner join dim_developers
        on fct_route_adoption.developer_id = dim_developers.developer_id
    inner join stg_raw__endpoints
        on fct_route_adoption.route = stg_raw__endpoints.route
    where
        stg_raw__endpoints.is_promoted
        and fct_route_adoption.first_call_date
        > {{ as_of_minus(var('milestone_window_days', 7) + 1) }}
        and fct_route_adoption.first_call_date < {{ as_of_date() }}

)

select * from final
