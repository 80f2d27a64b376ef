with

users as (

    select * from {{ ref('dim_users') }}

),

final as (

    select
        user_key,
        user_id,
        revenue_365d,
        orders_365d,
        last_order_at
    from users
    where
        has_analytics_consent
        and revenue_365d >= {{ var('high_value_min_revenue') }}

)

select * from final
