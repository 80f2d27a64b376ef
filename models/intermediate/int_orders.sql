{#-
  One row per order (Segment e-commerce spec), up to as_of.
  - An order is identified by properties.order_id; a purchase without one is its own order,
    keyed by its message_id. Repeated purchase events of one order (client and server both
    sending it, a retry days later) are one order with the first event's values: the
    earliest occurred_at, then received_at, then message_id.
  - Order Refunded reduces it: a full refund (no revenue, no products) refunds the whole
    order, a partial one its revenue, else its products' price x quantity (stg_events.
    refund_amount, in the order's currency). Refunds never exceed the order's revenue.
  - Order Cancelled cancels it: the row stays, with is_cancelled; a cancelled order is not an
    order (consumers filter it out).
  - Money is converted to var reporting_currency at the rate on the order date (the latest
    exchange_rates row dated on or before it; the reporting currency is 1). Without such a
    rate the currency is unknown: has_known_currency is false and the reporting amounts are
    null, never summed as if they were the reporting currency. Reporting amounts are
    rounded to cents.
  Consumers: orders = count(*) where not is_cancelled; money = sum(net_revenue_reporting)
  where not is_cancelled and has_known_currency.
-#}
{%- set reporting_currency = var('reporting_currency', 'USD') | upper -%}

with

events as (

    -- only events that can be order events: purchases, and events naming an order
    select * from {{ ref('int_events_stitched') }}
    where event_type = 'purchase' or order_id is not null

),

staged as (

    select
        message_id,
        order_event,
        refund_amount,
        is_full_refund
    from {{ ref('stg_events') }}
    where order_event is not null

),

exchange_rates as (

    select
        upper(trim(currency)) as currency,
        cast(rate_date as date) as rate_date,
        cast(rate_to_reporting as double) as rate_to_reporting
    from {{ ref('exchange_rates') }}

),

order_events as (

    -- every order event up to as_of (int_events_stitched holds only those), with its role
    select
        events.message_id,
        events.user_key,
        coalesce(events.order_id, events.message_id) as order_id,
        events.occurred_at,
        events.received_at,
        events.channel,
        events.revenue,
        coalesce(nullif(upper(trim(events.currency)), ''), '{{ reporting_currency }}') as currency,
        events.utm_campaign,
        staged.order_event,
        staged.refund_amount,
        staged.is_full_refund
    from events
    inner join staged
        on events.message_id = staged.message_id

),

purchases_ranked as (

    select
        *,
        count(*) over (partition by order_id) as purchase_events,
        row_number() over (
            partition by order_id
            order by occurred_at, received_at, message_id
        ) as event_rank
    from order_events
    where order_event = 'completed'

),

first_purchases as (

    select * from purchases_ranked
    where event_rank = 1

),

refunds as (

    select
        order_id,
        max(case when is_full_refund then 1 else 0 end) as has_full_refund,
        sum(coalesce(refund_amount, 0)) as partial_refund_amount
    from order_events
    where order_event = 'refunded' and order_id is not null
    group by order_id

),

cancellations as (

    select
        order_id,
        min(occurred_at) as cancelled_at
    from order_events
    where order_event = 'cancelled' and order_id is not null
    group by order_id

),

rates_ranked as (

    -- the rate on the order date: the latest rate dated on or before it
    select
        first_purchases.order_id,
        exchange_rates.rate_to_reporting,
        row_number() over (
            partition by first_purchases.order_id order by exchange_rates.rate_date desc
        ) as rate_rank
    from first_purchases
    inner join exchange_rates
        on
            first_purchases.currency = exchange_rates.currency
            and exchange_rates.rate_date <= cast(first_purchases.occurred_at as date)

),

converted as (

    select
        first_purchases.order_id,
        first_purchases.user_key,
        first_purchases.message_id,
        first_purchases.occurred_at as ordered_at,
        first_purchases.channel,
        first_purchases.currency,
        first_purchases.revenue,
        first_purchases.utm_campaign,
        first_purchases.purchase_events,
        case
            when first_purchases.currency = '{{ reporting_currency }}' then 1.0
            else rates_ranked.rate_to_reporting
        end as exchange_rate,
        -- refunds in the order's currency, at most the order's revenue
        case
            when refunds.order_id is null then 0.0
            when refunds.has_full_refund = 1 then coalesce(first_purchases.revenue, 0)
            else least(refunds.partial_refund_amount, coalesce(first_purchases.revenue, 0))
        end as refunded,
        cancellations.order_id is not null as is_cancelled,
        cancellations.cancelled_at
    from first_purchases
    left join rates_ranked
        on
            first_purchases.order_id = rates_ranked.order_id
            and rates_ranked.rate_rank = 1
    left join refunds
        on first_purchases.order_id = refunds.order_id
    left join cancellations
        on first_purchases.order_id = cancellations.order_id

),

final as (

    select
        order_id,
        user_key,
        message_id,
        ordered_at,
        channel,
        currency,
        cast(revenue as double) as revenue,
        exchange_rate is not null as has_known_currency,
        cast(exchange_rate as double) as exchange_rate,
        cast(round(coalesce(revenue, 0) * exchange_rate, 2) as double) as revenue_reporting,
        cast(round(refunded * exchange_rate, 2) as double) as refunded_reporting,
        -- greatest() skips nulls: an unknown currency must stay null, not become 0
        case
            when exchange_rate is not null
                then cast(round(greatest(
                        round(coalesce(revenue, 0) * exchange_rate, 2)
                        - round(refunded * exchange_rate, 2),
                        0
                    ), 2) as double)
        end as net_revenue_reporting,
        is_cancelled,
        cancelled_at,
        purchase_events,
        utm_campaign
    from converted

)

select * from final
