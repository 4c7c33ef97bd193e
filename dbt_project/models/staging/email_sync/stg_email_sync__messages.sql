{#
    The message ledger, typed. The ledger exists once email_sync has run; before that (a fresh
    warehouse built before its first sync) this view has the same columns and no rows.
#}
{%- set ledger = source('email_sync', 'messages') %}
{%- set ledger_exists = not execute
    or adapter.get_relation(ledger.database, ledger.schema, ledger.identifier) is not none %}

with

messages as (

    {%- if ledger_exists %}
        select * from {{ ledger }}
    {%- else %}
        select
            cast(null as {{ dbt.type_string() }}) as message_id,
            cast(null as {{ dbt.type_string() }}) as segment,
            cast(null as {{ dbt.type_string() }}) as step,
            cast(null as {{ dbt.type_string() }}) as member_key,
            cast(null as {{ dbt.type_string() }}) as developer_id,
            cast(null as {{ dbt.type_string() }}) as status,
            cast(null as {{ dbt.type_string() }}) as period,
            cast(null as timestamp with time zone) as created_at,
            cast(null as timestamp with time zone) as sent_at
        where 1 = 0
    {%- endif %}

),

final as (

    select
        cast(message_id as {{ dbt.type_string() }}) as message_id,
        cast(segment as {{ dbt.type_string() }}) as segment,
        cast(step as {{ dbt.type_string() }}) as step,
        cast(member_key as {{ dbt.type_string() }}) as member_key,
        cast(developer_id as {{ dbt.type_string() }}) as developer_id,
        cast(status as {{ dbt.type_string() }}) as status,
        cast(period as {{ dbt.type_string() }}) as period,
        created_at,
        sent_at
    from messages

)

select * from final
