with

events as (

    select * from {{ ref('int_events_stitched') }}

),

sessions as (

    select * from {{ ref('fct_sessions') }}

),

consent as (

    select * from {{ ref('int_user_consent') }}

),

as_of as (

    select
        {{ as_of() }} as as_of,
        {{ dbt.dateadd('day', -30, as_of()) }} as window_30d_start,
        {{ dbt.dateadd('day', -365, as_of()) }} as window_365d_start

),

event_features as (

    select
        events.user_key,
        max(events.user_id) as user_id,
        min(events.occurred_at) as first_seen_at,
        max(events.occurred_at) as last_seen_at,
        count(distinct cast(events.occurred_at as date)) as active_days,
        count(distinct case
            when events.occurred_at > as_of.window_30d_start then cast(events.occurred_at as date)
        end) as active_days_30d,
        count(*) as events,
        {% for event_type in canonical_event_types() -%}
            sum(case when events.event_type = '{{ event_type }}' then 1 else 0 end) as {{ event_type }}_count,
        {% endfor -%}
        count(distinct case
            when events.event_type = 'purchase' then coalesce(events.order_id, events.message_id)
        end) as orders,
        sum(case when events.event_type = 'purchase' then coalesce(events.revenue, 0) else 0 end) as revenue,
        max(case when events.event_type = 'purchase' then events.occurred_at end) as last_order_at,
        count(distinct case
            when events.event_type = 'purchase' and events.occurred_at > as_of.window_365d_start
                then coalesce(events.order_id, events.message_id)
        end) as orders_365d,
        sum(case
            when events.event_type = 'purchase' and events.occurred_at > as_of.window_365d_start
                then coalesce(events.revenue, 0)
            else 0
        end) as revenue_365d,
        max(case when events.event_type = 'add_to_cart' then events.occurred_at end) as last_cart_add_at
    from events
    cross join as_of
    group by events.user_key

),

cart_adds_ranked as (

    select
        user_key,
        occurred_at,
        product_id,
        price,
        row_number() over (
            partition by user_key order by occurred_at desc, message_id desc
        ) as recency_rank
    from events
    where event_type = 'add_to_cart'

),

last_cart_add as (

    select
        user_key,
        product_id as last_cart_product_id,
        price as last_cart_value
    from cart_adds_ranked
    where recency_rank = 1

),

session_features as (

    select
        sessions.user_key,
        count(*) as sessions,
        sum(case when sessions.started_at > as_of.window_30d_start then 1 else 0 end) as sessions_30d
    from sessions
    cross join as_of
    group by sessions.user_key

),

final as (

    select
        event_features.user_key,
        event_features.user_id,
        event_features.first_seen_at,
        event_features.last_seen_at,
        event_features.active_days,
        coalesce(session_features.sessions, 0) as sessions,
        event_features.events,
        {% for event_type in canonical_event_types() -%}
            event_features.{{ event_type }}_count,
        {% endfor -%}
        event_features.orders,
        cast(event_features.revenue as double) as revenue,
        event_features.last_order_at,
        cast(floor(
            {{ seconds_between('event_features.last_order_at', 'as_of.as_of') }} / 86400
        ) as {{ dbt.type_int() }}) as days_since_last_order,
        coalesce(session_features.sessions_30d, 0) as sessions_30d,
        event_features.active_days_30d,
        cast(event_features.revenue_365d as double) as revenue_365d,
        event_features.orders_365d,
        event_features.last_cart_add_at,
        last_cart_add.last_cart_product_id,
        cast(last_cart_add.last_cart_value as double) as last_cart_value,
        coalesce(
            event_features.last_order_at >= event_features.last_cart_add_at, false
        ) as has_purchase_since_last_cart_add,
        coalesce(consent.has_analytics_consent, true) as has_analytics_consent,
        as_of.as_of
    from event_features
    cross join as_of
    left join session_features
        on event_features.user_key = session_features.user_key
    left join last_cart_add
        on event_features.user_key = last_cart_add.user_key
    left join consent
        on event_features.user_key = consent.user_key

)

select * from final
