{#
    What HubSpot should hold on each company (the account-level rollup for account-based
    marketing): one row per company id of the developers file, every developer of the company
    counted, with or without an address. Pushed by crm_sync, upserted on the company's unique
    property (config.meta.onramp.crm in _pumps__models.yml).
#}
with

dim_developers as (

    select * from {{ ref('dim_developers') }}

),

int_developers_usage_summarized as (

    select * from {{ ref('int_developers_usage_summarized') }}

),

company_developers as (

    select * from dim_developers
    where company_id is not null

),

recent_usage as (

    -- the last 7 / 30 days end with the as-of day
    select
        company_developers.company_id,
        sum(usage_summary.events_7d) as api_events_7d,
        sum(usage_summary.events_30d) as api_events_30d
    from int_developers_usage_summarized as usage_summary
    inner join company_developers
        on usage_summary.developer_id = company_developers.developer_id
    group by company_developers.company_id

),

rollup as (

    select
        company_id,
        max(company_name) as company_name,
        count(*) as developers,
        sum(case when current_stage = 'not_integrated' then 1 else 0 end)
            as developers_not_integrated,
        sum(case when current_stage = 'sandbox' then 1 else 0 end) as developers_sandbox,
        sum(case when current_stage = 'production' then 1 else 0 end) as developers_production,
        sum(case when current_stage = 'dormant' then 1 else 0 end) as developers_dormant,
        -- funnel order: a dormant developer did integrate once, so it ranks above not_integrated
        max(
            case current_stage
                when 'production' then 4
                when 'sandbox' then 3
                when 'dormant' then 2
                else 1
            end
        ) as stage_rank,
        min(first_production_date) as first_production_date
    from company_developers
    group by company_id

),

final as (

    select
        rollup.company_id,
        rollup.company_name,
        rollup.developers as onramp_developers,
        rollup.developers_not_integrated as onramp_developers_not_integrated,
        rollup.developers_sandbox as onramp_developers_sandbox,
        rollup.developers_production as onramp_developers_production,
        rollup.developers_dormant as onramp_developers_dormant,
        coalesce(recent_usage.api_events_7d, 0) as onramp_api_events_7d,
        coalesce(recent_usage.api_events_30d, 0) as onramp_api_events_30d,
        case rollup.stage_rank
            when 4 then 'production'
            when 3 then 'sandbox'
            when 2 then 'dormant'
            else 'not_integrated'
        end as onramp_most_advanced_stage,
        rollup.first_production_date as onramp_first_production_date
    from rollup
    left join recent_usage
        on rollup.company_id = recent_usage.company_id

)

select * from final
