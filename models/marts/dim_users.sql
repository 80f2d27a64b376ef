with

activity as (

    select * from {{ ref('int_user_activity') }}

),

product_interest as (

    select * from {{ ref('int_user_product_interest') }}

),

email_fatigue as (

    select * from {{ ref('int_user_email_fatigue') }}

),

send_time as (

    select * from {{ ref('int_user_send_time') }}

),

rfm as (

    select * from {{ ref('int_user_rfm') }}

),

orders as (

    select * from {{ ref('int_orders') }}

),

sessions as (

    select * from {{ ref('fct_sessions') }}

),

consent as (

    select * from {{ ref('int_user_consent') }}

),

predictions as (

    select * from {{ ref('user_predictions') }}

),

cart_add_events as (

    select * from {{ ref('int_events_stitched') }}
    where event_type = 'add_to_cart'

),

as_of as (

    select
        {{ as_of() }} as as_of,
        {{ window_start('day', 30) }} as window_30d_start

),

session_features as (

    select
        sessions.user_key,
        count(*) as sessions,
        count(case when sessions.started_at > as_of.window_30d_start then 1 end) as sessions_30d,
        avg(sessions.duration_seconds) as avg_session_duration_seconds,
        count(case when sessions.channel in ('browser', 'web') then 1 end) as web_sessions,
        count(case when sessions.channel = 'mobile' then 1 end) as app_sessions,
        count(case when sessions.acquisition_channel = 'email' then 1 end) as email_sessions,
        count(distinct sessions.device_id) as devices,
        count(distinct sessions.device_type) as device_types
    from sessions
    cross join as_of
    group by sessions.user_key

),

device_type_ranked as (

    -- the device type with the most sessions; ties go to the alphabetically first
    select
        user_key,
        device_type,
        row_number() over (partition by user_key order by count(*) desc, device_type) as device_type_rank
    from sessions
    where device_type is not null
    group by user_key, device_type

),

acquisition_ranked as (

    select
        user_key,
        acquisition_channel,
        row_number() over (
            partition by user_key order by count(*) desc, acquisition_channel
        ) as acquisition_rank
    from sessions
    group by user_key, acquisition_channel

),

order_features as (

    -- orders: int_orders, cancelled ones left out; money: net revenue in the reporting
    -- currency of orders in a known currency, in cents
    select
        user_key,
        count(case when not is_cancelled then 1 end) as counted_orders,
        count(case when not is_cancelled and has_known_currency then 1 end) as known_currency_orders,
        count(case when not is_cancelled and not has_known_currency then 1 end) as orders_unknown_currency,
        count(case when is_cancelled then 1 end) as cancelled_orders,
        sum(case when not is_cancelled and has_known_currency then net_revenue_reporting end) as net_revenue,
        min(case when not is_cancelled then ordered_at end) as first_counted_order_at,
        max(case when not is_cancelled then ordered_at end) as last_counted_order_at,
        count(case
            when not is_cancelled and {{ in_last('ordered_at', 'day', 365) }} then 1
        end) as counted_orders_365d,
        sum(case
            when not is_cancelled and has_known_currency and {{ in_last('ordered_at', 'day', 365) }}
                then net_revenue_reporting
        end) as net_revenue_365d
    from orders
    group by user_key

),

last_cart_add_ranked as (

    select
        user_key,
        product_id,
        price,
        row_number() over (
            partition by user_key order by {{ event_order(descending=true) }}
        ) as recency_rank
    from cart_add_events

),

last_cart_add as (

    select
        user_key,
        product_id as last_cart_product_id,
        price as last_cart_value
    from last_cart_add_ranked
    where recency_rank = 1

),

joined as (

    select
        activity.*,
        as_of.as_of,
        coalesce(session_features.sessions, 0) as sessions,
        coalesce(session_features.sessions_30d, 0) as sessions_30d,
        session_features.avg_session_duration_seconds,
        coalesce(session_features.web_sessions, 0) as web_sessions,
        coalesce(session_features.app_sessions, 0) as app_sessions,
        coalesce(session_features.email_sessions, 0) as email_sessions,
        coalesce(session_features.devices, 0) as devices,
        coalesce(session_features.device_types, 0) as device_types,
        device_type_ranked.device_type as primary_device_type,
        acquisition_ranked.acquisition_channel as primary_acquisition_channel,
        last_cart_add.last_cart_product_id,
        last_cart_add.last_cart_value,
        product_interest.top_product_id_intent_window,
        product_interest.top_product_views_intent_window,
        email_fatigue.emails_delivered,
        email_fatigue.emails_opened,
        email_fatigue.emails_clicked,
        email_fatigue.emails_opened_open_window,
        email_fatigue.last_email_delivered_at,
        email_fatigue.last_email_engagement_at,
        email_fatigue.recent_deliveries,
        email_fatigue.recent_deliveries_opened,
        send_time.preferred_engagement_hour_utc,
        send_time.preferred_engagement_weekday,
        send_time.engagement_signals,
        rfm.recency_days as rfm_recency_days,
        rfm.frequency as rfm_frequency,
        rfm.monetary as rfm_monetary,
        rfm.recency_score,
        rfm.frequency_score,
        rfm.monetary_score,
        rfm.rfm_cell,
        consent.has_analytics_consent as stated_analytics_consent,
        consent.consent_categories,
        consent.consent_stated_at,
        coalesce(order_features.counted_orders, 0) as counted_orders,
        coalesce(order_features.known_currency_orders, 0) as known_currency_orders,
        coalesce(order_features.orders_unknown_currency, 0) as orders_unknown_currency,
        coalesce(order_features.cancelled_orders, 0) as cancelled_orders,
        coalesce(order_features.net_revenue, 0) as net_revenue,
        order_features.first_counted_order_at,
        order_features.last_counted_order_at,
        coalesce(order_features.counted_orders_365d, 0) as counted_orders_365d,
        coalesce(order_features.net_revenue_365d, 0) as net_revenue_365d,
        {{ seconds_between('order_features.last_counted_order_at', 'as_of.as_of') }} as seconds_since_last_order,
        purchase_prediction.score as purchase_propensity,
        purchase_prediction.percentile as purchase_propensity_percentile,
        purchase_prediction.top_features as purchase_top_features,
        churn_prediction.score as churn_risk,
        churn_prediction.percentile as churn_risk_percentile,
        churn_prediction.top_features as churn_top_features,
        coalesce(purchase_prediction.as_of, churn_prediction.as_of) as predictions_as_of
    from activity
    cross join as_of
    left join session_features
        on activity.user_key = session_features.user_key
    left join device_type_ranked
        on
            activity.user_key = device_type_ranked.user_key
            and device_type_ranked.device_type_rank = 1
    left join acquisition_ranked
        on
            activity.user_key = acquisition_ranked.user_key
            and acquisition_ranked.acquisition_rank = 1
    left join last_cart_add
        on activity.user_key = last_cart_add.user_key
    left join product_interest
        on activity.user_key = product_interest.user_key
    left join email_fatigue
        on activity.user_key = email_fatigue.user_key
    left join send_time
        on activity.user_key = send_time.user_key
    left join rfm
        on activity.user_key = rfm.user_key
    left join consent
        on activity.user_key = consent.user_key
    left join order_features
        on activity.user_key = order_features.user_key
    left join predictions as purchase_prediction
        on
            activity.user_key = purchase_prediction.user_key
            and purchase_prediction.model_name = 'purchase'
    left join predictions as churn_prediction
        on
            activity.user_key = churn_prediction.user_key
            and churn_prediction.model_name = 'churn'

),

final as (

    select
        user_key,
        user_id,
        {{ lifecycle_stage(
            'counted_orders',
            'user_id is not null',
            'first_cart_intent_at is not null',
            'coalesce(not ' ~ in_last('last_counted_order_at', 'day', var('lifecycle_lapsed_after_days'), 'as_of') ~ ', false)'
        ) }} as lifecycle_stage,
        {{ engagement_score('engagement_points_window') }} as engagement_score,
        -- activity
        first_seen_at,
        last_seen_at,
        first_identified_at,
        active_days,
        sessions,
        cast(avg_session_duration_seconds as double) as avg_session_duration_seconds,
        events,
        {% for event_type in canonical_event_types() -%}
            {{ event_type }}_count,
        {% endfor -%}
        sessions_30d,
        active_days_30d,
        -- browsing
        product_view_count as product_views,
        distinct_products_viewed,
        categories_viewed,
        high_end_product_views,
        cast(high_end_product_views as double) / nullif(product_view_count, 0) as high_end_view_share,
        cast(avg_viewed_price as double) as avg_viewed_price,
        {{ price_tier('avg_viewed_price') }} as browsing_price_tier,
        high_end_product_views >= {{ var('high_end_browsing_min_views') }} as has_high_end_browsing,
        last_product_view_at,
        product_views_browse_window,
        cart_adds_browse_window,
        pricing_views_intent_window,
        last_pricing_view_at,
        top_product_id_intent_window,
        coalesce(top_product_views_intent_window, 0) as top_product_views_intent_window,
        -- buying
        add_to_cart_count as cart_adds,
        first_cart_intent_at,
        counted_orders as orders,
        cast(round(net_revenue, 2) as double) as revenue,
        cast(round(net_revenue / nullif(known_currency_orders, 0), 2) as double) as average_order_value,
        first_counted_order_at as first_order_at,
        last_counted_order_at as last_order_at,
        cast(floor(seconds_since_last_order / 86400) as {{ dbt.type_int() }}) as days_since_last_order,
        cast(round(net_revenue_365d, 2) as double) as revenue_365d,
        counted_orders_365d as orders_365d,
        orders_unknown_currency,
        cancelled_orders,
        last_cart_add_at,
        last_cart_product_id,
        cast(last_cart_value as double) as last_cart_value,
        coalesce(last_counted_order_at >= last_cart_add_at, false) as has_purchase_since_last_cart_add,
        -- rfm
        rfm_recency_days,
        rfm_frequency,
        cast(rfm_monetary as double) as rfm_monetary,
        recency_score,
        frequency_score,
        monetary_score,
        rfm_cell,
        -- email
        coalesce(emails_delivered, 0) as emails_delivered,
        coalesce(emails_opened, 0) as emails_opened,
        coalesce(emails_clicked, 0) as emails_clicked,
        cast(emails_opened as double) / nullif(emails_delivered, 0) as email_open_rate,
        cast(emails_clicked as double) / nullif(emails_delivered, 0) as email_click_through_rate,
        coalesce(emails_opened_open_window, 0) as emails_opened_open_window,
        last_email_delivered_at,
        last_email_engagement_at,
        coalesce(recent_deliveries, 0) as recent_deliveries,
        coalesce(recent_deliveries_opened, 0) as recent_deliveries_opened,
        -- send-time optimisation
        preferred_engagement_hour_utc,
        preferred_engagement_weekday,
        coalesce(engagement_signals, 0) as engagement_signals,
        -- reach and status
        web_sessions,
        app_sessions,
        email_sessions,
        primary_acquisition_channel,
        devices,
        device_types,
        primary_device_type,
        coalesce(emails_delivered > 0, false) as is_email_reachable,
        -- engagement
        engagement_points_window,
        engagement_points_recent,
        engagement_points_baseline,
        coalesce(stated_analytics_consent, true) as has_analytics_consent,
        consent_categories,
        consent_stated_at,
        -- predictions (user_predictions; null while no model is published or unscored)
        purchase_propensity,
        purchase_propensity_percentile,
        purchase_top_features,
        churn_risk,
        churn_risk_percentile,
        churn_top_features,
        predictions_as_of,
        as_of
    from joined

)

select * from final
