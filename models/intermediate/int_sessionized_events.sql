{#-
  Sessions per device identity. A new session starts at a device's first event, after a gap
  strictly greater than var session_timeout_seconds, and (var session_new_on_campaign_change)
  at an event whose utm campaign differs from the one in effect. A session reaching
  var session_max_duration_seconds is cut on a fixed grid from its start.
  Everything is a function of the device's own events ordered by (occurred_at, message_id):
  the result does not depend on processing order, and session_id only on the session's
  first message.
-#}
{%- set split_on_campaign = var('session_new_on_campaign_change', false) -%}
{%- set max_seconds = var('session_max_duration_seconds', none) -%}

with

events as (

    -- server-side messages (email webhooks) are not visits: they never form sessions
    select * from {{ ref('int_events_stitched') }}
    where
        channel is null
        or channel not in {{ sql_list(var('session_excluded_channels')) }}

),

event_keys as (

    -- the windows below run on this narrow projection; the wide rows are joined back once
    select
        message_id,
        device_id,
        occurred_at{% if split_on_campaign %},
        utm_campaign{% endif %}
    from events

),

with_gaps as (

    select
        *,
        {{ seconds_between(
            'lag(occurred_at) over (partition by device_id order by occurred_at, message_id)',
            'occurred_at'
        ) }} as seconds_since_previous_event
    from event_keys

),

{% if split_on_campaign -%}
campaign_blocks as (

    -- campaign_block n = the events from the device's n-th campaign-tagged event on
    select
        *,
        sum(case when utm_campaign is not null then 1 else 0 end) over (
            partition by device_id
            order by occurred_at, message_id
            rows between unbounded preceding and current row
        ) as campaign_block
    from with_gaps

),

with_block_campaign as (

    select
        *,
        -- the campaign in effect in this block (null before the first tagged event)
        max(utm_campaign) over (partition by device_id, campaign_block) as block_campaign
    from campaign_blocks

),

with_campaign_in_effect as (

    select
        *,
        lag(block_campaign) over (
            partition by device_id order by occurred_at, message_id
        ) as campaign_in_effect
    from with_block_campaign

),

{% endif -%}
flagged as (

    -- a gap strictly greater than the timeout starts a new session (exact seconds)
    select
        *,
        case
            when seconds_since_previous_event is null then 1
            when seconds_since_previous_event > {{ var('session_timeout_seconds') }} then 1
            {%- if split_on_campaign %}
            when
                utm_campaign is not null
                and (campaign_in_effect is null or utm_campaign <> campaign_in_effect)
                then 1
            {%- endif %}
            else 0
        end as is_visit_start
    from {% if split_on_campaign %}with_campaign_in_effect{% else %}with_gaps{% endif %}

),

visits as (

    select
        *,
        sum(is_visit_start) over (
            partition by device_id
            order by occurred_at, message_id
            rows between unbounded preceding and current row
        ) as device_visit_number
    from flagged

),

with_visit_start as (

    select
        *,
        min(occurred_at) over (partition by device_id, device_visit_number) as visit_started_at
    from visits

),

chunked as (

    -- the maximum length: an event at start + k * max seconds or later opens part k
    select
        *,
        {% if max_seconds is not none -%}
            cast(floor(
                {{ seconds_between('visit_started_at', 'occurred_at') }} / {{ max_seconds }}
            ) as {{ dbt.type_int() }})
        {%- else -%}
            0
        {%- endif %} as visit_part
    from with_visit_start

),

with_session_first as (

    select
        *,
        first_value(message_id) over (
            partition by device_id, device_visit_number, visit_part
            order by occurred_at, message_id
            rows between unbounded preceding and unbounded following
        ) as session_first_message_id,
        row_number() over (
            partition by device_id, device_visit_number, visit_part
            order by occurred_at, message_id
        ) as session_event_number
    from chunked

),

numbered as (

    select
        *,
        sum(case when session_event_number = 1 then 1 else 0 end) over (
            partition by device_id
            order by occurred_at, message_id
            rows between unbounded preceding and current row
        ) as device_session_number
    from with_session_first

),

session_keys as (

    select
        message_id,
        {{ dbt.hash(dbt.concat(['device_id', "'|'", 'session_first_message_id'])) }} as session_id,
        device_session_number,
        session_event_number,
        seconds_since_previous_event
    from numbered

),

final as (

    select
        session_keys.session_id,
        session_keys.device_session_number,
        session_keys.session_event_number,
        session_keys.session_event_number = 1 as is_session_start,
        session_keys.seconds_since_previous_event,
        events.message_id,
        events.message_type,
        events.event_name,
        events.event_type,
        events.user_key,
        events.user_id,
        events.device_id,
        events.anonymous_id,
        events.occurred_at,
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
        events.variation
    from events
    inner join session_keys
        on events.message_id = session_keys.message_id

)

select * from final
