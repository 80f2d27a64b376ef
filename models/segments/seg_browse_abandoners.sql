with

users as (

    select * from {{ ref('dim_users') }}

),

final as (

    select
        user_key,
        user_id,
        product_views_browse_window,
        cart_adds_browse_window,
        last_product_view_at,
        distinct_products_viewed,
        browsing_price_tier
    from users
    where
        has_analytics_consent
        and product_views_browse_window >= {{ var('browse_abandonment_min_product_views') }}
        and cart_adds_browse_window = 0

)

select * from final
