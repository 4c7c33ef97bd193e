with

email_events as (

    select * from {{ ref('stg_sendgrid__email_events') }}

),

-- one message key per event: the ledger id, else SendGrid's (mail not sent through onramp)
keyed as (

    select
        campaign,
        step,
        occurred_date,
        event_type,
        coalesce(message_id, sg_message_id, email) as message_key
    from email_events

),

counted as (

    select
        campaign,
        step,
        occurred_date as event_date,
        count(distinct case when event_type = 'processed' then message_key end) as sent,
        count(distinct case when event_type = 'delivered' then message_key end) as delivered,
        count(distinct case when event_type = 'open' then message_key end) as unique_opens,
        count(distinct case when event_type = 'click' then message_key end) as unique_clicks,
        count(distinct case when event_type = 'bounce' then message_key end) as bounces,
        count(distinct case when event_type = 'dropped' then message_key end) as drops,
        count(
            distinct case
                when event_type in ('unsubscribe', 'group_unsubscribe') then message_key
            end
        ) as unsubscribes,
        count(distinct case when event_type = 'spamreport' then message_key end) as spam_reports
    from keyed
    group by campaign, step, occurred_date

),

final as (

    select
        campaign,
        step,
        event_date,
        sent,
        delivered,
        unique_opens,
        unique_clicks,
        bounces,
        drops,
        unsubscribes,
        spam_reports,
        cast(delivered as {{ dbt.type_numeric() }}) / nullif(sent, 0) as delivery_rate,
        cast(unique_opens as {{ dbt.type_numeric() }}) / nullif(delivered, 0) as open_rate,
        cast(unique_clicks as {{ dbt.type_numeric() }}) / nullif(delivered, 0) as click_rate,
        cast(bounces as {{ dbt.type_numeric() }}) / nullif(sent, 0) as bounce_rate,
        cast(unsubscribes as {{ dbt.type_numeric() }}) / nullif(delivered, 0) as unsubscribe_rate,
        cast(spam_reports as {{ dbt.type_numeric() }}) / nullif(delivered, 0) as spam_report_rate
    from counted

)

select * from final
