with

endpoints as (

    select * from {{ source('raw', 'endpoints') }}

),

normalized as (

    select
        {{ normalize_route('trim(route)') }} as route,
        nullif(trim(feature_name), '') as feature_name,
        coalesce(promoted, false) as is_promoted,
        nullif(trim(docs_url), '') as docs_url,
        batch_id,
        line_number
    from endpoints

),

ranked as (

    select
        *,
        row_number() over (
            partition by route
            order by batch_id desc, line_number desc
        ) as row_rank
    from normalized

),

final as (

    select
        route,
        coalesce(feature_name, route) as feature_name,
        is_promoted,
        docs_url
    from ranked
    where row_rank = 1

)

select * from final
