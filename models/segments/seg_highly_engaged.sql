with

users as (

    select * from {{ ref('dim_users') }}

),

final as (

    select
        user_key,
        user_id,
        sessions_30d,
        active_days_30d,
        last_seen_at
    from users
    where
        has_analytics_consent
        and sessions_30d >= {{ var('highly_engaged_min_sessions') }}
        and active_days_30d >= {{ var('highly_engaged_min_active_days') }}

)

select * from final
