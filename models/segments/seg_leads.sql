with

users as (

    select * from {{ ref('dim_users') }}

),

final as (

    select
        user_key,
        user_id,
        lifecycle_stage,
        first_cart_intent_at,
        cart_adds,
        checkout_started_count,
        last_seen_at
    from users
    where
        has_analytics_consent
        and lifecycle_stage = 'lead'

)

select * from final
