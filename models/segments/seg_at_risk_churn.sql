{%- set recent_days = var('churn_recent_days') -%}
{%- set baseline_days = var('churn_baseline_days') -%}

with

users as (

    select * from {{ ref('dim_users') }}

),

rates as (

    select
        user_key,
        user_id,
        engagement_points_recent,
        engagement_points_baseline,
        cast(engagement_points_recent as double) / {{ recent_days }} as recent_points_per_day,
        cast(engagement_points_baseline as double) / {{ baseline_days }} as baseline_points_per_day,
        last_seen_at,
        has_analytics_consent
    from users

),

final as (

    select
        user_key,
        user_id,
        engagement_points_recent,
        engagement_points_baseline,
        recent_points_per_day,
        baseline_points_per_day,
        recent_points_per_day / baseline_points_per_day as activity_ratio,
        last_seen_at
    from rates
    where
        has_analytics_consent
        and engagement_points_baseline >= {{ var('churn_min_baseline_points') }}
        and recent_points_per_day < {{ var('churn_max_activity_ratio') }} * baseline_points_per_day

)

select * from final
