{#
    Developer x promoted route: developers with a call in the last var unused_feature_active_days
    (30) days who never called that promoted route.
#}
with

dim_developers as (

    select * from {{ ref('dim_developers') }}

),

stg_raw__endpoints as (

    select * from {{ ref('stg_raw__endpoints') }}

),

fct_route_adoption as (

    select * from {{ ref('fct_route_adoption') }}

),

active_developers as (

    select *
    from dim_developers
    where
        last_call_date > {{ as_of_minus(var('unused_feature_active_days')) }}
        and last_call_date <= {{ as_of_date() }}

),

promoted_routes as (

    select * from stg_raw__endpoints
    where is_promoted

),

final as (

    select
        active_developers.developer_id || ':' || promoted_routes.route as member_key,
        active_developers.developer_id,
        active_developers.email,
        active_developers.developer_name as name,
        active_developers.role,
        active_developers.company_name,
        active_developers.marketing_opt_in,
        active_developers.current_stage as stage,
        promoted_routes.route,
        promoted_routes.feature_name,
        promoted_routes.docs_url,
        active_developers.last_call_date
    from active_developers
    cross join promoted_routes
    where not exists (
        select 1
        from fct_route_adoption
        where
            fct_route_adoption.developer_id = active_developers.developer_id
            and fct_route_adoption.route = promoted_routes.route
    )

)

select * from final
