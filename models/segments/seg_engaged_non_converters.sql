with

users as (

    select * from {{ ref('dim_users') }}

),

final as (

    select
        user_key,
        user_id,
        emails_opened_open_window,
        last_email_engagement_at,
        last_order_at,
        days_since_last_order
    from users
    where
        has_analytics_consent
        and emails_opened_open_window >= {{ var('engaged_non_converter_min_opens') }}
        -- no purchase in the last N days: the last order (if any) is at least N days old
        and (
            last_order_at is null
            or last_order_at <= {{ window_start('day', var('engaged_non_converter_no_purchase_days'), 'as_of') }}
        )

)

select * from final
