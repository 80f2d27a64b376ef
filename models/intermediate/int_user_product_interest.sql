with

events as (

    select * from {{ ref('int_events_stitched') }}
    where
        event_type = 'product_view'
        and product_id is not null
        and occurred_at > {{ window_start('hour', var('high_intent_window_hours')) }}

),

views_per_product as (

    select
        user_key,
        product_id,
        count(*) as product_views,
        max(occurred_at) as last_viewed_at
    from events
    group by user_key, product_id

),

ranked as (

    -- the most viewed product; ties: the most recently viewed, then the lowest product_id
    select
        *,
        row_number() over (
            partition by user_key
            order by product_views desc, last_viewed_at desc, product_id asc
        ) as interest_rank
    from views_per_product

),

final as (

    select
        user_key,
        product_id as top_product_id_intent_window,
        product_views as top_product_views_intent_window,
        last_viewed_at as top_product_last_viewed_at
    from ranked
    where interest_rank = 1

)

select * from final
