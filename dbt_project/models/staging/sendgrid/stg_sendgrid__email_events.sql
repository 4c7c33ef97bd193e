{#-
    The raw table is created by the receiver; on a warehouse that has never received an event
    this model is an empty relation of the same shape, so `onramp build` works on day one. The
    view is recreated on every run, so it reads the table as soon as it exists.
-#}
{%- set events_source = source('sendgrid', 'email_events') -%}
{%- set events_relation = none -%}
{%- if execute -%}
    {%- set events_relation = adapter.get_relation(
        database=events_source.database,
        schema=events_source.schema,
        identifier=events_source.identifier,
    ) -%}
{%- endif -%}

with

email_events as (

    {% if events_relation is not none %}
        select * from {{ events_source }}
    {% else %}
        select
            cast(null as {{ dbt.type_string() }}) as sg_event_id,
            cast(null as {{ dbt.type_string() }}) as event,
            cast(null as {{ dbt.type_string() }}) as email,
            cast(null as {{ dbt.type_timestamp() }}) as occurred_at,
            cast(null as {{ dbt.type_string() }}) as sg_message_id,
            cast(null as {{ dbt.type_string() }}) as onramp_message_id,
            cast(null as {{ dbt.type_string() }}) as onramp_campaign,
            cast(null as {{ dbt.type_string() }}) as onramp_step,
            cast(null as {{ dbt.type_string() }}) as reason,
            cast(null as {{ dbt.type_string() }}) as bounce_type,
            cast(null as {{ dbt.type_string() }}) as url,
            cast(null as {{ dbt.type_bigint() }}) as asm_group_id,
            cast(null as {{ dbt.type_timestamp() }}) as received_at
        where 1 = 0
    {% endif %}

),

final as (

    select
        sg_event_id,
        lower(event) as event_type,
        lower(trim(email)) as email,
        occurred_at,
        {{ utc_date('occurred_at') }} as occurred_date,
        -- SendGrid's message id is the X-Message-Id plus a suffix per recipient
        sg_message_id,
        onramp_message_id as message_id,
        coalesce(nullif(trim(onramp_campaign), ''), '(unknown)') as campaign,
        coalesce(nullif(trim(onramp_step), ''), 'entry') as step,
        reason,
        bounce_type,
        url,
        asm_group_id,
        received_at
    from email_events

)

select * from final
