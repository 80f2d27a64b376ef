with

users as (

    select * from {{ ref('dim_users') }}

),

evaluated as (

    select
        user_key,
        user_id,
        last_cart_add_at,
        {{ seconds_between('last_cart_add_at', 'as_of') }} as seconds_since_cart_add,
        last_cart_product_id as cart_product_id,
        last_cart_value as cart_value,
        has_purchase_since_last_cart_add,
        has_analytics_consent,
        as_of
    from users
    where last_cart_add_at is not null

),

final as (

    select
        user_key,
        user_id,
        last_cart_add_at,
        cast(seconds_since_cart_add as double) / 3600 as hours_since_cart_add,
        cart_product_id,
        cart_value
    from evaluated
    where
        has_analytics_consent
        -- the most recent cart add is in the last max_age days ...
        and {{ in_last('last_cart_add_at', 'day', var('cart_abandonment_max_age_days'), 'as_of') }}
        -- ... but not in the last window_hours (exactly window_hours old is abandoned) ...
        and not {{ in_last('last_cart_add_at', 'hour', var('cart_abandonment_window_hours'), 'as_of') }}
        -- ... with no purchase at or after it
        and not has_purchase_since_last_cart_add

)

select * from final
