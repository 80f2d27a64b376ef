with

users as (

    select * from {{ ref('dim_users') }}

),

active_customers as (

    -- scored by the churn model (active in the last 28 days) and a customer now; the
    -- percentile ranks them among themselves: 100 x the share at or below (ties share the
    -- highest), as 100 x count / total so that exactly 90 stays 90 in floating point
    select
        user_key,
        user_id,
        churn_risk,
        churn_risk_percentile,
        100 * cast(count(*) over (
            order by churn_risk range between unbounded preceding and current row
        ) as double) / count(*) over () as churn_risk_customer_percentile,
        churn_top_features,
        lifecycle_stage,
        last_seen_at,
        last_order_at,
        predictions_as_of
    from users
    where
        has_analytics_consent
        and churn_risk is not null
        and lifecycle_stage in ('customer', 'repeat_customer')

),

final as (

    select * from active_customers
    where churn_risk_customer_percentile > {{ var('predicted_churn_min_percentile') }}

)

select * from final
