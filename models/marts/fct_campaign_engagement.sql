with

emails as (

    select * from {{ ref('int_user_emails') }}
    where campaign_id is not null

),

sessions as (

    select * from {{ ref('fct_sessions') }}
    where utm_campaign is not null

),

email_results as (

    -- the email channel: what the email service reported, counted per user (int_user_emails:
    -- an email is its email_id, else its campaign's send; a click is an open)
    select
        campaign_id,
        'email' as channel,
        max(campaign_name) as campaign_name,
        min(delivered_at) as first_delivered_at,
        count(distinct user_key) as delivered,
        count(distinct case when first_opened_at is not null then user_key end) as unique_opens,
        sum(click_events) as clicks,
        count(distinct case when first_clicked_at is not null then user_key end) as unique_clicks
    from emails
    group by campaign_id

),

session_totals as (

    -- sessions whose first event carries utm_campaign = the campaign (last-click), with the
    -- orders fct_sessions attributes to them (the one order attribution rule: an order's
    -- own session, else, for a server-side order, the person's session in progress)
    select
        utm_campaign as campaign_id,
        acquisition_channel as channel,
        count(*) as sessions,
        count(distinct user_key) as session_users,
        sum(orders) as conversions,
        count(case when has_purchase then 1 end) as converted_sessions,
        sum(revenue) as revenue,
        sum(unknown_currency_orders) as unknown_currency_orders
    from sessions
    group by utm_campaign, acquisition_channel

),

final as (

    select
        coalesce(email_results.campaign_id, session_totals.campaign_id) as campaign_id,
        email_results.campaign_name,
        coalesce(email_results.channel, session_totals.channel) as channel,
        email_results.first_delivered_at,
        coalesce(email_results.delivered, 0) as delivered,
        coalesce(email_results.unique_opens, 0) as unique_opens,
        cast(coalesce(email_results.clicks, 0) as {{ dbt.type_bigint() }}) as clicks,
        coalesce(email_results.unique_clicks, 0) as unique_clicks,
        cast(email_results.unique_opens as double) / nullif(email_results.delivered, 0) as open_rate,
        cast(email_results.unique_clicks as double) / nullif(email_results.delivered, 0) as click_through_rate,
        cast(email_results.unique_clicks as double) / nullif(email_results.unique_opens, 0) as click_to_open_rate,
        coalesce(session_totals.sessions, 0) as sessions,
        coalesce(session_totals.session_users, 0) as session_users,
        cast(coalesce(session_totals.conversions, 0) as {{ dbt.type_bigint() }}) as conversions,
        cast(coalesce(session_totals.converted_sessions, 0) as {{ dbt.type_bigint() }}) as converted_sessions,
        cast(round(coalesce(session_totals.revenue, 0), 2) as double) as revenue,
        cast(coalesce(session_totals.unknown_currency_orders, 0) as {{ dbt.type_bigint() }})
            as unknown_currency_orders,
        cast(coalesce(session_totals.converted_sessions, 0) as double) / nullif(session_totals.sessions, 0)
            as session_conversion_rate
    from email_results
    full outer join session_totals
        on
            email_results.campaign_id = session_totals.campaign_id
            and email_results.channel = session_totals.channel

)

select * from final
