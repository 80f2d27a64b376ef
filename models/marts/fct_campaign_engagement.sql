with

events as (

    select * from {{ ref('int_events_stitched') }}
    where
        event_type in ('email_delivered', 'email_open', 'email_click')
        and campaign_id is not null

),

sessions as (

    select * from {{ ref('fct_sessions') }}
    where utm_campaign is not null

),

email_results as (

    -- the email channel: what the email service reported, counted per user
    select
        campaign_id,
        'email' as channel,
        max(campaign_name) as campaign_name,
        min(case when event_type = 'email_delivered' then occurred_at end) as first_delivered_at,
        count(distinct case when event_type = 'email_delivered' then user_key end) as delivered,
        count(distinct case when event_type = 'email_open' then user_key end) as unique_opens,
        sum(case when event_type = 'email_click' then 1 else 0 end) as clicks,
        count(distinct case when event_type = 'email_click' then user_key end) as unique_clicks
    from events
    group by campaign_id

),

session_results as (

    -- sessions whose first event carries utm_campaign = the campaign (last-click)
    select
        utm_campaign as campaign_id,
        acquisition_channel as channel,
        count(*) as sessions,
        count(distinct user_key) as session_users,
        sum(case when has_purchase then 1 else 0 end) as conversions,
        sum(revenue) as revenue
    from sessions
    group by utm_campaign, acquisition_channel

),

final as (

    select
        coalesce(email_results.campaign_id, session_results.campaign_id) as campaign_id,
        email_results.campaign_name,
        coalesce(email_results.channel, session_results.channel) as channel,
        email_results.first_delivered_at,
        coalesce(email_results.delivered, 0) as delivered,
        coalesce(email_results.unique_opens, 0) as unique_opens,
        cast(coalesce(email_results.clicks, 0) as {{ dbt.type_bigint() }}) as clicks,
        coalesce(email_results.unique_clicks, 0) as unique_clicks,
        cast(email_results.unique_opens as double) / nullif(email_results.delivered, 0) as open_rate,
        cast(email_results.unique_clicks as double) / nullif(email_results.delivered, 0) as click_through_rate,
        cast(email_results.unique_clicks as double) / nullif(email_results.unique_opens, 0) as click_to_open_rate,
        coalesce(session_results.sessions, 0) as sessions,
        coalesce(session_results.session_users, 0) as session_users,
        cast(coalesce(session_results.conversions, 0) as {{ dbt.type_bigint() }}) as conversions,
        cast(coalesce(session_results.revenue, 0) as double) as revenue,
        cast(session_results.conversions as double) / nullif(session_results.sessions, 0)
            as session_conversion_rate
    from email_results
    full outer join session_results
        on
            email_results.campaign_id = session_results.campaign_id
            and email_results.channel = session_results.channel

)

select * from final
