{#- Membership state exists once email_sync has run; before that this model is empty. -#}
{%- set membership_source = source('email_sync', 'segment_membership') -%}
{%- set state = adapter.get_relation(
    database=membership_source.database,
    schema=membership_source.schema,
    identifier=membership_source.identifier,
) if execute else none -%}
with

segment_membership as (

    {%- if state is not none %}
        select * from {{ membership_source }}
    {%- else %}
        select
            cast(null as {{ dbt.type_string() }}) as segment,
            cast(null as {{ dbt.type_string() }}) as member_key,
            cast(null as {{ dbt.type_string() }}) as developer_id,
            cast(null as {{ dbt.type_timestamp() }}) as entered_at,
            cast(null as {{ dbt.type_timestamp() }}) as exited_at,
            cast(null as date) as entered_as_of,
            cast(null as date) as exited_as_of,
            cast(null as {{ dbt.type_int() }}) as entry_count,
            cast(null as {{ dbt.type_string() }}) as sequence_period,
            cast(null as date) as sequence_started_as_of,
            cast(null as {{ dbt.type_int() }}) as sequence_step,
            cast(null as date) as goal_reached_as_of
        where 1 = 0
    {%- endif %}

),

final as (

    select
        segment,
        member_key,
        developer_id,
        entered_at,
        exited_at,
        entered_as_of,
        exited_as_of,
        entry_count,
        sequence_period,
        sequence_started_as_of,
        sequence_step,
        goal_reached_as_of
    from segment_membership

)

select * from final
