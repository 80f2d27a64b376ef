{#-
  TEMPORARY stub of the int_orders interface (replaced by the rules-orders branch at merge):
  purchases deduplicated by order_id, the first event wins; no refunds, no cancellations,
  no exchange rates (only USD or no currency is known).
-#}

with

purchases as (

    select * from {{ ref('int_events_stitched') }}
    where event_type = 'purchase'

),

ranked as (

    select
        *,
        coalesce(order_id, message_id) as order_key,
        row_number() over (
            partition by coalesce(order_id, message_id)
            order by occurred_at, received_at, message_id
        ) as event_rank
    from purchases

),

final as (

    select
        order_key as order_id,
        user_key,
        message_id,
        occurred_at as ordered_at,
        channel,
        upper(coalesce(currency, 'USD')) as currency,
        revenue,
        case when upper(coalesce(currency, 'USD')) = 'USD' then revenue end as revenue_reporting,
        cast(0 as double) as refunded_reporting,
        case when upper(coalesce(currency, 'USD')) = 'USD' then revenue end as net_revenue_reporting,
        false as is_cancelled,
        upper(coalesce(currency, 'USD')) = 'USD' as has_known_currency,
        utm_campaign
    from ranked
    where event_rank = 1

)

select * from final
