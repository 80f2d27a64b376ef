with

events as (

    select * from {{ ref('stg_events') }}
    where occurred_at <= {{ as_of() }}

),

identity_map as (

    select * from {{ ref('int_identity_map') }}

),

stitched as (

    select
        events.message_id,
        events.message_type,
        events.event_name,
        events.event_type,
        coalesce(events.user_id, identity_map.user_id, events.anonymous_id) as user_key,
        coalesce(events.user_id, identity_map.user_id) as user_id,
        -- the message itself names the user (its own userId): the user is known from here on
        events.user_id is not null as is_identified,
        coalesce(events.anonymous_id, events.user_id) as device_id,
        events.anonymous_id,
        events.occurred_at,
        events.received_at,
        events.page_path,
        events.page_url,
        events.page_referrer,
        events.page_title,
        events.page_name,
        events.utm_source,
        events.utm_medium,
        events.utm_campaign,
        events.device_type,
        events.channel,
        events.product_id,
        events.category,
        events.price,
        events.order_id,
        events.revenue,
        events.currency,
        events.campaign_id,
        events.campaign_name,
        events.experiment_id,
        events.variation,
        events.has_analytics_consent
    from events
    left join identity_map
        on events.anonymous_id = identity_map.anonymous_id
    -- consent: an event whose own context denies analytics never reaches behavior
    where coalesce(events.has_analytics_consent, true)

),

final as (

    select * from stitched

)

select * from final
