with

users as (

    select * from {{ ref('dim_users') }}

),

final as (

    select
        user_key,
        user_id,
        recency_score,
        frequency_score,
        monetary_score,
        rfm_recency_days,
        rfm_frequency,
        rfm_monetary,
        last_order_at
    from users
    where
        has_analytics_consent
        and recency_score <= {{ var('rfm_hibernating_max_recency_score') }}
        and frequency_score <= {{ var('rfm_hibernating_max_frequency_score') }}

)

select * from final
