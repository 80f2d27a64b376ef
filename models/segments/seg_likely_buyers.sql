with

users as (

    select * from {{ ref('dim_users') }}

),

final as (

    select
        user_key,
        user_id,
        purchase_propensity,
        purchase_propensity_percentile,
        purchase_top_features,
        last_order_at,
        predictions_as_of
    from users
    where
        has_analytics_consent
        and purchase_propensity_percentile > {{ var('likely_buyers_min_percentile') }}
        -- no order in the last N days: the last order (if any) is at least N days old
        and (
            last_order_at is null
            or last_order_at <= {{ window_start('day', var('likely_buyers_no_order_days'), 'as_of') }}
        )

)

select * from final
