-- Campaigns by reach: rates, conversions and net revenue (reporting currency, in cents).
with

campaigns as (

    select * from {{ ref('fct_campaign_engagement') }}

),

final as (

    select
        campaign_id,
        campaign_name,
        channel,
        delivered,
        round(open_rate, 3) as open_rate,
        round(click_to_open_rate, 3) as click_to_open_rate,
        conversions,
        revenue
    from campaigns

)

select * from final
order by delivered desc
