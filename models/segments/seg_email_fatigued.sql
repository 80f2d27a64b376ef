with

users as (

    select * from {{ ref('dim_users') }}

),

final as (

    select
        user_key,
        user_id,
        recent_deliveries,
        recent_deliveries_opened,
        emails_delivered,
        last_email_delivered_at,
        last_email_engagement_at
    from users
    where
        has_analytics_consent
        and recent_deliveries >= {{ var('email_fatigue_deliveries') }}
        and recent_deliveries_opened = 0

)

select * from final
