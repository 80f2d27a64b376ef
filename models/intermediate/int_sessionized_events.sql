with

events as (

    -- server-side messages (email webhooks) are not visits: they never form sessions
    select * from {{ ref('int_events_stitched') }}
    where
        channel is null
        or channel not in {{ sql_list(var('session_excluded_channels')) }}

),

with_gaps as (

    select
        *,
        {{ seconds_between(
            'lag(occurred_at) over (partition by device_id order by occurred_at, message_id)',
            'occurred_at'
        ) }} as seconds_since_previous_event
    from events

),

flagged as (

    -- a gap strictly greater than the timeout starts a new session (exact seconds)
    select
        *,
        case
            when seconds_since_previous_event is null then 1
            when seconds_since_previous_event > {{ var('session_timeout_seconds') }} then 1
            else 0
        end as is_session_start
    from with_gaps

),

numbered as (

    select
        *,
        sum(is_session_start) over (
            partition by device_id
            order by occurred_at, message_id
            rows between unbounded preceding and current row
        ) as device_session_number
    from flagged

),

with_session_first as (

    select
        *,
        first_value(message_id) over (
            partition by device_id, device_session_number
            order by occurred_at, message_id
            rows between unbounded preceding and unbounded following
        ) as session_first_message_id,
        row_number() over (
            partition by device_id, device_session_number
            order by occurred_at, message_id
        ) as session_event_number
    from numbered

),

final as (

    select
        {{ dbt.hash(dbt.concat(['device_id', "'|'", 'session_first_message_id'])) }} as session_id,
        device_session_number,
        session_event_number,
        is_session_start = 1 as is_session_start,
        seconds_since_previous_event,
        message_id,
        message_type,
        event_name,
        event_type,
        user_key,
        user_id,
        device_id,
        anonymous_id,
        occurred_at,
        page_path,
        page_url,
        page_referrer,
        page_title,
        page_name,
        utm_source,
        utm_medium,
        utm_campaign,
        device_type,
        channel,
        product_id,
        category,
        price,
        order_id,
        revenue,
        currency,
        campaign_id,
        campaign_name,
        experiment_id,
        variation
    from with_session_first

)

select * from final
