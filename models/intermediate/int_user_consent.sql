with

events as (

    -- every event, including those that deny analytics: they carry the consent state
    select * from {{ ref('stg_events') }}
    where
        occurred_at <= {{ as_of() }}
        and has_analytics_consent is not null

),

identity_map as (

    select * from {{ ref('int_identity_map') }}

),

stitched as (

    select
        coalesce(events.user_id, identity_map.user_id, events.anonymous_id) as user_key,
        events.message_id,
        events.occurred_at,
        events.has_analytics_consent
    from events
    left join identity_map
        on events.anonymous_id = identity_map.anonymous_id

),

ranked as (

    select
        *,
        row_number() over (
            partition by user_key
            order by occurred_at desc, message_id desc
        ) as recency_rank
    from stitched

),

final as (

    select
        user_key,
        has_analytics_consent,
        occurred_at as consent_stated_at,
        message_id as consent_message_id
    from ranked
    where recency_rank = 1

)

select * from final
