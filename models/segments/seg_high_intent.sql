with

users as (

    select * from {{ ref('dim_users') }}

),

final as (

    select
        user_key,
        user_id,
        pricing_views_intent_window,
        top_product_id_intent_window,
        top_product_views_intent_window,
        last_pricing_view_at,
        last_product_view_at
    from users
    where
        has_analytics_consent
        and (
            pricing_views_intent_window >= {{ var('high_intent_min_views') }}
            or top_product_views_intent_window >= {{ var('high_intent_min_views') }}
        )

)

select * from final
