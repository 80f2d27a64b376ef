with

users as (

    select * from {{ ref('dim_users') }}

),

final as (

    select
        user_key,
        user_id,
        lifecycle_stage,
        orders,
        revenue,
        last_order_at,
        days_since_last_order
    from users
    where
        has_analytics_consent
        and lifecycle_stage = 'lapsed'

)

select * from final
