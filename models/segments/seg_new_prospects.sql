with

users as (

    select * from {{ ref('dim_users') }}

),

final as (

    select
        user_key,
        user_id,
        lifecycle_stage,
        first_seen_at,
        first_identified_at,
        product_views,
        engagement_score
    from users
    where
        has_analytics_consent
        and lifecycle_stage = 'prospect'
        and {{ in_last('first_seen_at', 'day', var('new_prospect_days'), 'as_of') }}

)

select * from final
