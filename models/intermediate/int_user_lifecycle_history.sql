{#-
  Each user's lifecycle stage over time, replayed from the events up to as_of with the
  same rule and the same orders as dim_users.lifecycle_stage (macro lifecycle_stage; orders
  from int_orders, cancelled ones left out, each order once at its first event). The stage
  can only change at a milestone: first seen, first identified (known), first cart intent,
  each order, and the moment a customer lapses: last order + var lifecycle_lapsed_after_days
  exactly (the order is then no longer in the last N days), unless the next order comes at
  or before it. One row per spell in a stage; the current spell's stage equals
  dim_users.lifecycle_stage (tests/dbt/assert_dim_users_lifecycle_matches_history.sql).
-#}
with

orders as (

    select * from {{ ref('int_orders') }}
    where not is_cancelled

),

activity as (

    select * from {{ ref('int_user_activity') }}

),

orders_with_next as (

    select
        user_key,
        ordered_at,
        lead(ordered_at) over (partition by user_key order by ordered_at, order_id) as next_ordered_at,
        {{ dbt.dateadd('day', var('lifecycle_lapsed_after_days'), 'ordered_at') }} as lapses_at
    from orders

),

milestones as (

    select
        user_key,
        first_seen_at as milestone_at,
        0 as is_known,
        0 as has_cart_intent,
        0 as new_orders,
        0 as is_lapse
    from activity

    union all

    -- known from the first message naming the user (or from the start, when that message
    -- did not reach behavior but the identity map still names the user)
    select
        user_key,
        coalesce(first_identified_at, first_seen_at) as milestone_at,
        1 as is_known,
        0 as has_cart_intent,
        0 as new_orders,
        0 as is_lapse
    from activity
    where user_id is not null

    union all

    select
        user_key,
        first_cart_intent_at as milestone_at,
        0 as is_known,
        1 as has_cart_intent,
        0 as new_orders,
        0 as is_lapse
    from activity
    where first_cart_intent_at is not null

    union all

    select
        user_key,
        ordered_at as milestone_at,
        0 as is_known,
        0 as has_cart_intent,
        1 as new_orders,
        0 as is_lapse
    from orders_with_next

    union all

    -- the customer lapses unless the next order comes at or before the lapse instant
    select
        user_key,
        lapses_at as milestone_at,
        0 as is_known,
        0 as has_cart_intent,
        0 as new_orders,
        1 as is_lapse
    from orders_with_next
    where
        (next_ordered_at is null or next_ordered_at > lapses_at)
        and lapses_at <= {{ as_of() }}

),

per_instant as (

    select
        user_key,
        milestone_at,
        max(is_known) as is_known,
        max(has_cart_intent) as has_cart_intent,
        sum(new_orders) as new_orders,
        max(case when new_orders > 0 then milestone_at end) as ordered_at,
        max(is_lapse) as is_lapse
    from milestones
    -- a user seen only through messages they did not initiate (emails) has no first_seen_at:
    -- no milestone without an instant (engines order a null instant differently)
    where milestone_at is not null
    group by user_key, milestone_at

),

cumulative as (

    select
        user_key,
        milestone_at,
        is_lapse,
        max(is_known) over (
            partition by user_key order by milestone_at rows between unbounded preceding and current row
        ) as is_known,
        max(has_cart_intent) over (
            partition by user_key order by milestone_at rows between unbounded preceding and current row
        ) as has_cart_intent,
        sum(new_orders) over (
            partition by user_key order by milestone_at rows between unbounded preceding and current row
        ) as orders,
        max(ordered_at) over (
            partition by user_key order by milestone_at rows between unbounded preceding and current row
        ) as last_ordered_at
    from per_instant

),

staged as (

    select
        user_key,
        milestone_at,
        {{ lifecycle_stage(
            'orders',
            'is_known = 1',
            'has_cart_intent = 1',
            '(is_lapse = 1 or not ' ~ in_last('last_ordered_at', 'day', var('lifecycle_lapsed_after_days'), 'milestone_at') ~ ')'
        ) }} as lifecycle_stage
    from cumulative

),

with_previous as (

    select
        *,
        lag(lifecycle_stage) over (partition by user_key order by milestone_at) as previous_stage
    from staged

),

changes as (

    select
        user_key,
        lifecycle_stage,
        previous_stage,
        milestone_at as entered_at
    from with_previous
    where previous_stage is null or previous_stage <> lifecycle_stage

),

final as (

    select
        user_key,
        lifecycle_stage,
        previous_stage,
        entered_at,
        lead(entered_at) over (partition by user_key order by entered_at) as exited_at,
        lead(entered_at) over (partition by user_key order by entered_at) is null as is_current
    from changes

)

select * from final
