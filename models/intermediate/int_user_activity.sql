{#-
  One pass over the behavioral events: every per-user count, sum and window feature that
  a plain aggregate can give. Windows are "the last N" = occurred_at > as_of - N.
  Incremental by changed users (macros/incremental/incremental_refresh.sql): a run recomputes only the
  users whose events changed, or crossed one of the windows below as as_of moved.
-#}
{{
    config(
        materialized='incremental',
        incremental_strategy=refresh_strategy('append'),
        partition_by=refresh_partition_by(),
        pre_hook="{{ changed_keys_pre_hook('user_key', user_activity_windows()) }}",
        post_hook=changed_keys_post_hooks()
    )
}}
{%- set refresh = changed_keys('user_key', user_activity_windows()) -%}
{%- set pricing_view -%}
    events.event_type in ('page_view', 'screen_view')
    and (
        lower(events.page_path) in {{ lower_sql_list(var('high_intent_pricing_paths')) }}
        or lower(events.page_name) in {{ lower_sql_list(var('high_intent_pricing_page_names')) }}
    )
{%- endset -%}
{%- set order_key = 'coalesce(events.order_id, events.message_id)' -%}

with

events as (

    select * from {{ ref('int_events_stitched') }}
    {%- if refresh.filtered %}
    where user_key in ({{ refresh.keys_sql }})
    {%- endif %}

),

as_of as (

    select
        {{ as_of() }} as as_of,
        {{ window_start('day', 30) }} as window_30d_start,
        {{ window_start('day', var('rfm_window_days')) }} as rfm_window_start,
        {{ window_start('day', 365) }} as window_365d_start,
        {{ window_start('hour', var('high_intent_window_hours')) }} as high_intent_window_start,
        {{ window_start('day', var('browse_abandonment_window_days')) }}
            as browse_window_start,
        {{ window_start('day', var('engagement_window_days')) }} as engagement_window_start,
        {{ window_start('day', var('churn_recent_days')) }} as churn_recent_start,
        {{ window_start('day', var('churn_recent_days') + var('churn_baseline_days')) }} as churn_baseline_start

),

orders as (

    select
        message_id,
        is_cancelled
    from {{ ref('int_orders') }}

),

scored as (

    select
        events.*,
        -- engagement: user-initiated messages only; a purchase scores once per order (its
        -- first event), and not at all once the order is cancelled (it is no order)
        case
            when not events.is_user_initiated then 0
            when events.event_type = 'purchase'
                and (orders.message_id is null or orders.is_cancelled) then 0
            else {{ engagement_points('events.event_type') }}
        end as engagement_points
    from events
    left join orders
        on events.message_id = orders.message_id

),

aggregated as (

    select
        events.user_key,
        -- the person's current userId: the one its latest message that itself carries a
        -- userId names (after an alias A -> B the person is known as B); when no such message
        -- reached behavior (it denied consent), the one its latest event is attributed to
        coalesce(
            {{ latest_value('case when events.is_identified then events.user_id end',
                            ['events.occurred_at', 'events.received_at', 'events.message_id']) }},
            {{ latest_value('events.user_id',
                            ['events.occurred_at', 'events.received_at', 'events.message_id']) }}
        ) as user_id,
        -- activity: user-initiated messages only (page, screen, and track from a client
        -- channel); identify, alias, group and server-side messages are not activity
        min(case when events.is_user_initiated then events.occurred_at end) as first_seen_at,
        max(case when events.is_user_initiated then events.occurred_at end) as last_seen_at,
        min(case when events.is_identified then events.occurred_at end) as first_identified_at,
        count(distinct case
            when events.is_user_initiated then cast(events.occurred_at as date)
        end) as active_days,
        count(distinct case
            when events.is_user_initiated and events.occurred_at > as_of.window_30d_start
                then cast(events.occurred_at as date)
        end) as active_days_30d,
        count(*) as events,
        {% for event_type in canonical_event_types() -%}
            count(case when events.event_type = '{{ event_type }}' then 1 end) as {{ event_type }}_count,
        {% endfor -%}
        -- browsing
        count(distinct case when events.event_type = 'product_view' then events.product_id end)
            as distinct_products_viewed,
        count(distinct case when events.event_type = 'product_view' then events.category end)
            as categories_viewed,
        count(case
            when events.event_type = 'product_view'
                and events.price >= {{ var('price_tier_high_end_min_price') }} then 1
        end) as high_end_product_views,
        avg(case when events.event_type = 'product_view' then events.price end) as avg_viewed_price,
        max(case when events.event_type = 'product_view' then events.occurred_at end) as last_product_view_at,
        count(case
            when events.event_type = 'product_view' and events.occurred_at > as_of.browse_window_start
                then 1
        end) as product_views_browse_window,
        count(case
            when events.event_type = 'add_to_cart' and events.occurred_at > as_of.browse_window_start
                then 1
        end) as cart_adds_browse_window,
        count(case
            when {{ pricing_view }} and events.occurred_at > as_of.high_intent_window_start then 1
        end) as pricing_views_intent_window,
        max(case when {{ pricing_view }} then events.occurred_at end) as last_pricing_view_at,
        -- buying
        min(case when events.event_type in ('add_to_cart', 'checkout_started') then events.occurred_at end)
            as first_cart_intent_at,
        max(case when events.event_type = 'add_to_cart' then events.occurred_at end) as last_cart_add_at,
        count(distinct case when events.event_type = 'purchase' then {{ order_key }} end) as orders,
        sum(case when events.event_type = 'purchase' then coalesce(events.revenue, 0) else 0 end) as revenue,
        min(case when events.event_type = 'purchase' then events.occurred_at end) as first_order_at,
        max(case when events.event_type = 'purchase' then events.occurred_at end) as last_order_at,
        count(distinct case
            when events.event_type = 'purchase' and events.occurred_at > as_of.window_365d_start
                then {{ order_key }}
        end) as orders_365d,
        sum(case
            when events.event_type = 'purchase' and events.occurred_at > as_of.window_365d_start
                then coalesce(events.revenue, 0)
            else 0
        end) as revenue_365d,
        count(distinct case
            when events.event_type = 'purchase' and events.occurred_at > as_of.rfm_window_start
                then {{ order_key }}
        end) as orders_rfm_window,
        sum(case
            when events.event_type = 'purchase' and events.occurred_at > as_of.rfm_window_start
                then coalesce(events.revenue, 0)
            else 0
        end) as revenue_rfm_window,
        -- engagement points
        cast(sum(case
            when events.occurred_at > as_of.engagement_window_start then events.engagement_points
            else 0
        end) as {{ dbt.type_bigint() }}) as engagement_points_window,
        cast(sum(case
            when events.occurred_at > as_of.churn_recent_start then events.engagement_points
            else 0
        end) as {{ dbt.type_bigint() }}) as engagement_points_recent,
        cast(sum(case
            when
                events.occurred_at > as_of.churn_baseline_start
                and events.occurred_at <= as_of.churn_recent_start
                then events.engagement_points
            else 0
        end) as {{ dbt.type_bigint() }}) as engagement_points_baseline
    from scored as events
    cross join as_of
    group by events.user_key

),

final as (

    select * from aggregated

)

{{ select_refreshed_keys(refresh, 'user_key') }}
