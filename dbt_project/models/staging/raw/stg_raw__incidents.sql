with

incidents as (

    select * from {{ source('raw', 'incidents') }}

),

ranked as (

    select
        *,
        row_number() over (
            partition by incident_id
            order by batch_id desc, line_number desc
        ) as row_rank
    from incidents

),

final as (

    select
        incident_id,
        coalesce(nullif(trim(title), ''), incident_id) as incident_title,
        started_at,
        ended_at,
        trim(affected_route) as affected_route
    from ranked
    where row_rank = 1

)

select * from final
