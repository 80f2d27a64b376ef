{#-
  The prediction features: one row per identified user (a userId, at least one
  user-initiated event), evaluated at as_of from what happened up to as_of only. The models
  (ewh/predictions) train on this table built at past as_of values (point-in-time: every
  upstream model reads only events that occurred by as_of, identity included) and score it
  at the current as_of, so training and scoring read the same definitions.
  feature_version is the md5 of this file: a model refuses rows of another version.
  Windows ("the last N days": occurred_at > as_of - N, macro in_last) are part of the
  definitions, so they are set here rather than as vars.
-#}
{%- set short_days = 7 -%}
{%- set long_days = 28 -%}
{%- set order_days = 90 -%}
{%- set revenue_days = 365 -%}
{%- set email_days = 28 -%}

with

activity as (

    select * from {{ ref('int_user_activity') }}
    where user_id is not null and first_seen_at is not null

),

events as (

    select
        user_key,
        event_type,
        occurred_at
    from {{ ref('int_events_stitched') }}
    where is_user_initiated

),

sessions as (

    -- sessions as fct_sessions counts them: the person of the first event, its start, its events
    select
        session_id,
        max(case when session_event_number = 1 then user_key end) as user_key,
        min(occurred_at) as started_at,
        count(*) as event_count
    from {{ ref('int_sessionized_events') }}
    group by session_id

),

orders as (

    select * from {{ ref('int_orders') }}
    where not is_cancelled

),

emails as (

    select * from {{ ref('int_user_emails') }}

),

rfm as (

    select * from {{ ref('int_user_rfm') }}

),

consent as (

    select * from {{ ref('int_user_consent') }}

),

as_of as (

    select {{ as_of() }} as as_of

),

event_features as (

    select
        user_key,
        count(distinct case
            when {{ in_last('occurred_at', 'day', short_days) }} then cast(occurred_at as date)
        end) as active_days_7d,
        count(distinct case
            when {{ in_last('occurred_at', 'day', long_days) }} then cast(occurred_at as date)
        end) as active_days_28d,
        count(case when {{ in_last('occurred_at', 'day', long_days) }} then 1 end) as events_28d,
        count(case
            when event_type = 'product_view' and {{ in_last('occurred_at', 'day', short_days) }} then 1
        end) as product_views_7d,
        count(case
            when event_type = 'product_view' and {{ in_last('occurred_at', 'day', long_days) }} then 1
        end) as product_views_28d,
        count(case
            when event_type = 'add_to_cart' and {{ in_last('occurred_at', 'day', short_days) }} then 1
        end) as cart_adds_7d,
        count(case
            when event_type = 'add_to_cart' and {{ in_last('occurred_at', 'day', long_days) }} then 1
        end) as cart_adds_28d,
        count(case
            when event_type = 'checkout_started' and {{ in_last('occurred_at', 'day', long_days) }} then 1
        end) as checkouts_28d,
        count(case
            when event_type = 'search' and {{ in_last('occurred_at', 'day', long_days) }} then 1
        end) as searches_28d,
        max(case when event_type = 'add_to_cart' then occurred_at end) as last_cart_add_at
    from events
    group by user_key

),

session_features as (

    select
        user_key,
        count(case when {{ in_last('started_at', 'day', short_days) }} then 1 end) as sessions_7d,
        count(case when {{ in_last('started_at', 'day', long_days) }} then 1 end) as sessions_28d,
        avg(case when {{ in_last('started_at', 'day', long_days) }} then event_count end)
            as events_per_session_28d
    from sessions
    group by user_key

),

order_features as (

    select
        user_key,
        count(*) as orders,
        count(case when {{ in_last('ordered_at', 'day', order_days) }} then 1 end) as orders_90d,
        max(ordered_at) as last_order_at,
        sum(case
            when has_known_currency and {{ in_last('ordered_at', 'day', revenue_days) }}
                then net_revenue_reporting
        end) as revenue_365d
    from orders
    group by user_key

),

email_features as (

    -- an opened or clicked email counts as opened (int_user_emails: a click implies an open)
    select
        user_key,
        count(case when {{ in_last('delivered_at', 'day', email_days) }} then 1 end) as emails_delivered_28d,
        count(case when {{ in_last('first_opened_at', 'day', email_days) }} then 1 end) as emails_opened_28d
    from emails
    group by user_key

),

final as (

    select
        activity.user_key,
        activity.user_id,
        as_of.as_of,
        '{{ local_md5(model.raw_code) }}' as feature_version,
        coalesce(consent.has_analytics_consent, true) as has_analytics_consent,
        rfm.recency_score as rfm_recency_score,
        {{ seconds_between('activity.first_seen_at', 'as_of.as_of') }} / 86400 as days_since_first_seen,
        {{ seconds_between('activity.last_seen_at', 'as_of.as_of') }} / 86400 as days_since_last_seen,
        coalesce(event_features.active_days_7d, 0) as active_days_7d,
        coalesce(event_features.active_days_28d, 0) as active_days_28d,
        coalesce(event_features.events_28d, 0) as events_28d,
        coalesce(session_features.sessions_7d, 0) as sessions_7d,
        coalesce(session_features.sessions_28d, 0) as sessions_28d,
        cast(round(session_features.events_per_session_28d, 6) as double) as events_per_session_28d,
        coalesce(event_features.product_views_7d, 0) as product_views_7d,
        coalesce(event_features.product_views_28d, 0) as product_views_28d,
        coalesce(event_features.cart_adds_7d, 0) as cart_adds_7d,
        coalesce(event_features.cart_adds_28d, 0) as cart_adds_28d,
        coalesce(event_features.checkouts_28d, 0) as checkouts_28d,
        coalesce(event_features.searches_28d, 0) as searches_28d,
        {{ seconds_between('event_features.last_cart_add_at', 'as_of.as_of') }} / 86400
            as days_since_last_cart_add,
        case
            when event_features.last_cart_add_at is null then 0
            when order_features.last_order_at is null
                or order_features.last_order_at < event_features.last_cart_add_at then 1
            else 0
        end as has_open_cart,
        coalesce(order_features.orders, 0) as orders,
        coalesce(order_features.orders_90d, 0) as orders_90d,
        {{ seconds_between('order_features.last_order_at', 'as_of.as_of') }} / 86400
            as days_since_last_order,
        -- rounded to cents: a sum of doubles may differ in its last bits between runs, and the
        -- training data must be the same every time
        cast(round(coalesce(order_features.revenue_365d, 0), 2) as double) as revenue_365d,
        coalesce(email_features.emails_delivered_28d, 0) as emails_delivered_28d,
        coalesce(email_features.emails_opened_28d, 0) as emails_opened_28d
    from activity
    cross join as_of
    left join consent
        on activity.user_key = consent.user_key
    left join rfm
        on activity.user_key = rfm.user_key
    left join event_features
        on activity.user_key = event_features.user_key
    left join session_features
        on activity.user_key = session_features.user_key
    left join order_features
        on activity.user_key = order_features.user_key
    left join email_features
        on activity.user_key = email_features.user_key

)

select * from final
