{#-
  One row per session. Incremental by changed devices (macros/incremental/incremental_refresh.sql): a run
  recomputes every session of the devices whose events int_events_stitched (re)wrote since the
  last run, so merged, split and renumbered sessions are replaced whole, and every session of
  the persons whose events changed (an order attributed to one of their sessions may move).

  Orders per session (rule: order attribution). Sessions hold only user-initiated messages, but
  every order counts, server-side ones included. An order whose first event is in a session
  belongs to that session; any other order (a server-side purchase) belongs to the person's
  session in progress at the order time or ended at most var session_timeout_seconds before it
  (started_at <= ordered_at <= ended_at + timeout), the latest started if several (then the
  largest session_id); else to no session. Orders are int_orders' (not cancelled); revenue is
  net_revenue_reporting of the orders in a known currency.
-#}
{{
    config(
        materialized='incremental',
        incremental_strategy=refresh_strategy('append'),
        partition_by=refresh_partition_by(),
        contract={'enforced': refresh_contract_enforced()},
        pre_hook="{{ session_refresh_pre_hook() }}",
        post_hook=changed_keys_post_hooks()
    )
}}
{%- set refresh = session_refresh_keys() %}

with

events as {{ inline_cte(not refresh.filtered) }} (

    select
        session_id,
        device_id,
        user_key,
        user_id,
        message_id,
        event_type,
        occurred_at,
        received_at,
        session_event_number,
        page_path,
        page_name,
        page_referrer,
        utm_source,
        utm_medium,
        utm_campaign,
        channel,
        device_type
    from {{ ref('int_sessionized_events') }}
    {%- if refresh.filtered %}
    where device_id in ({{ refresh.keys_sql }})
    {%- endif %}

),

landing_and_exit as (

    -- the first and the last page view of the session, and screen views for apps (a screen
    -- has a name, not a path): aggregates over the event order, not windows sorting each event
    {%- set order = ['occurred_at', 'received_at', 'message_id'] %}
    select
        session_id,
        {{ earliest_row_value('coalesce(page_path, page_name)', order) }} as landing_page,
        {{ latest_row_value('coalesce(page_path, page_name)', order) }} as exit_page
    from events
    where event_type in ('page_view', 'screen_view')
    group by session_id

),

session_totals as (

    select
        session_id,
        min(occurred_at) as started_at,
        max(occurred_at) as ended_at,
        count(*) as event_count,
        cast(sum(case when event_type = 'page_view' then 1 else 0 end) as {{ dbt.type_bigint() }})
            as page_views,
        sum(case when event_type in ('page_view', 'screen_view') then 1 else 0 end) as screen_or_page_views,
        sum(
            case when event_type in {{ sql_list(interaction_event_types()) }} then 1 else 0 end
        ) as interactions,
        max(case when event_type = 'add_to_cart' then 1 else 0 end) as add_to_cart_flag,
        -- attributes of the session's first event (attribution) and its stitched user
        max(case when session_event_number = 1 then device_id end) as device_id,
        max(case when session_event_number = 1 then user_key end) as user_key,
        max(user_id) as user_id,
        max(case when session_event_number = 1 then page_referrer end) as referrer,
        max(case when session_event_number = 1 then utm_source end) as utm_source,
        max(case when session_event_number = 1 then utm_medium end) as utm_medium,
        max(case when session_event_number = 1 then utm_campaign end) as utm_campaign,
        max(case when session_event_number = 1 then channel end) as channel,
        max(case when session_event_number = 1 then device_type end) as device_type
    from events
    group by session_id

),

-- ---- order attribution ----------------------------------------------------------------
-- orders: int_orders (ORDERS part), one row per order; cancelled orders are not orders, and
-- money counts only in a known currency (net of refunds, in the reporting currency)
orders as (

    select
        order_id,
        user_key,
        message_id,
        ordered_at,
        has_known_currency,
        case
            when has_known_currency then coalesce(net_revenue_reporting, 0)
            else 0
        end as order_revenue
    from {{ ref('int_orders') }}
    where
        not is_cancelled
        and user_key in (select user_key from session_totals)

),

person_sessions as (

    -- every session of the persons of the sessions built here (an order may go to a session
    -- on another device)
    select
        session_id,
        max(user_key) as user_key,
        min(occurred_at) as started_at,
        max(occurred_at) as ended_at
    from {{ ref('int_sessionized_events') }}
    where user_key in (select user_key from session_totals)
    group by session_id

),

order_in_own_session as (

    -- the order's first event is itself in a session
    select
        orders.order_id,
        orders.user_key,
        sessionized.session_id
    from orders
    inner join {{ ref('int_sessionized_events') }} as sessionized
        on orders.message_id = sessionized.message_id

),

order_candidates as (

    -- any other order: the person's session in progress at the order time, or ended at most
    -- the session timeout before it
    select
        orders.order_id,
        orders.user_key,
        person_sessions.session_id,
        row_number() over (
            partition by orders.user_key, orders.order_id
            order by person_sessions.started_at desc, person_sessions.session_id desc
        ) as candidate_rank
    from orders
    inner join person_sessions
        on
            orders.user_key = person_sessions.user_key
            and person_sessions.started_at <= orders.ordered_at
            and orders.ordered_at <= {{ dbt.dateadd('second', var('session_timeout_seconds'), 'person_sessions.ended_at') }}
    left join order_in_own_session
        on
            orders.order_id = order_in_own_session.order_id
            and orders.user_key = order_in_own_session.user_key
    where order_in_own_session.order_id is null

),

order_sessions as (

    select order_id, user_key, session_id from order_in_own_session
    union all
    select order_id, user_key, session_id from order_candidates
    where candidate_rank = 1

),

session_orders as (

    select
        order_sessions.session_id,
        count(*) as orders,
        count(case when not orders.has_known_currency then 1 end) as unknown_currency_orders,
        sum(orders.order_revenue) as revenue
    from order_sessions
    inner join orders
        on
            order_sessions.order_id = orders.order_id
            and order_sessions.user_key = orders.user_key
    group by order_sessions.session_id

),

final as (

    select
        session_totals.session_id,
        session_totals.user_key,
        session_totals.user_id,
        session_totals.device_id,
        session_totals.started_at,
        session_totals.ended_at,
        {{ seconds_between('session_totals.started_at', 'session_totals.ended_at') }}
            as duration_seconds,
        session_totals.event_count,
        session_totals.page_views,
        landing_and_exit.landing_page,
        landing_and_exit.exit_page,
        session_totals.referrer,
        session_totals.utm_source,
        session_totals.utm_medium,
        session_totals.utm_campaign,
        session_totals.channel,
        {{ acquisition_channel(
            'session_totals.utm_source', 'session_totals.utm_medium',
            'session_totals.utm_campaign', 'session_totals.referrer'
        ) }} as acquisition_channel,
        session_totals.device_type,
        session_totals.screen_or_page_views <= 1 and session_totals.interactions = 0 as is_bounce,
        session_totals.add_to_cart_flag = 1 as has_add_to_cart,
        coalesce(session_orders.orders, 0) > 0 as has_purchase,
        coalesce(session_orders.orders, 0) as orders,
        coalesce(session_orders.unknown_currency_orders, 0) as unknown_currency_orders,
        cast(coalesce(session_orders.revenue, 0) as double) as revenue
    from session_totals
    left join landing_and_exit
        on session_totals.session_id = landing_and_exit.session_id
    left join session_orders
        on session_totals.session_id = session_orders.session_id

)

{{ select_refreshed_keys(refresh, 'device_id') }}
