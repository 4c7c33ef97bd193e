{#- The ledger exists once email_sync has run; before that this model is empty. -#}
{%- set messages_source = source('email_sync', 'messages') -%}
{%- set ledger = adapter.get_relation(
    database=messages_source.database,
    schema=messages_source.schema,
    identifier=messages_source.identifier,
) if execute else none -%}
with

messages as (

    {%- if ledger is not none %}
        select * from {{ messages_source }}
    {%- else %}
        select
            cast(null as {{ dbt.type_string() }}) as message_id,
            cast(null as {{ dbt.type_string() }}) as segment,
            cast(null as {{ dbt.type_string() }}) as step,
            cast(null as {{ dbt.type_string() }}) as member_key,
            cast(null as {{ dbt.type_string() }}) as developer_id,
            cast(null as {{ dbt.type_string() }}) as period,
            cast(null as {{ dbt.type_string() }}) as template,
            cast(null as {{ dbt.type_string() }}) as kind,
            cast(null as {{ dbt.type_string() }}) as status,
            cast(null as {{ dbt.type_string() }}) as reason,
            cast(null as {{ dbt.type_int() }}) as deferrals,
            cast(null as {{ dbt.type_int() }}) as attempts,
            cast(null as {{ dbt.type_string() }}) as provider,
            cast(null as {{ dbt.type_timestamp() }}) as created_at,
            cast(null as {{ dbt.type_timestamp() }}) as sent_at
        where 1 = 0
    {%- endif %}

),

final as (

    select
        message_id,
        segment as campaign,
        step,
        case when step = 'entry' then 1 else cast(step as {{ dbt.type_int() }}) end as step_number,
        member_key,
        developer_id,
        period,
        template,
        kind as category,
        status,
        reason,
        deferrals,
        attempts,
        provider,
        created_at,
        sent_at,
        status in ('sent', 'sent_unconfirmed') as is_sent
    from messages

)

select * from final
