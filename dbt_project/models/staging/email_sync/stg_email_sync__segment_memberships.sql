{#
    Segment membership as email_sync keeps it, typed; as-of days fall back to the UTC day of the
    timestamps for rows written before as-of days were recorded. Empty (same columns) before the
    first sync creates the table.
#}
{%- set membership = source('email_sync', 'segment_membership') %}
{%- set membership_exists = not execute
    or adapter.get_relation(membership.database, membership.schema, membership.identifier)
    is not none %}

with

segment_membership as (

    {%- if membership_exists %}
        select * from {{ membership }}
    {%- else %}
        select
            cast(null as {{ dbt.type_string() }}) as segment,
            cast(null as {{ dbt.type_string() }}) as member_key,
            cast(null as {{ dbt.type_string() }}) as developer_id,
            cast(null as timestamp with time zone) as entered_at,
            cast(null as date) as entered_as_of,
            cast(null as timestamp with time zone) as exited_at,
            cast(null as date) as exited_as_of,
            cast(null as {{ dbt.type_int() }}) as entry_count
        where 1 = 0
    {%- endif %}

),

final as (

    select
        cast(segment as {{ dbt.type_string() }}) as segment,
        cast(member_key as {{ dbt.type_string() }}) as member_key,
        cast(developer_id as {{ dbt.type_string() }}) as developer_id,
        entered_at,
        coalesce(entered_as_of, {{ utc_date('entered_at') }}) as entered_as_of,
        exited_at,
        coalesce(exited_as_of, {{ utc_date('exited_at') }}) as exited_as_of,
        entry_count
    from segment_membership

)

select * from final
