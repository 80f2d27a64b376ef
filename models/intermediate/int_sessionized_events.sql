{#-
  Sessions per device identity. A new session starts at a device's first event, after a gap
  strictly greater than var session_timeout_seconds, and (var session_new_on_campaign_change)
  at an event whose utm campaign differs from the one in effect. A session reaching
  var session_max_duration_seconds is cut on a fixed grid from its start.
  Only user-initiated messages (is_user_initiated: page, screen, and track from a client
  channel) form sessions; identify, alias, group and server-side messages never do. An event
  whose person (user_key) differs from the device's previous event's starts a new session (a
  shared device, int_identity_map).
  Everything is a function of the device's own events ordered by (occurred_at, received_at,
  message_id) (macro event_order):
  the result does not depend on processing order, and session_id only on the session's
  first message.

  Incremental (delete+insert on message_id). Sessionization is causal: an event's session
  depends only on the device's earlier events. A run finds the touched device identities (rows
  int_events_stitched (re)wrote since this table's last stitched_at: new, late or re-stitched
  events) and, per device, re-sessionizes every event from the start of the visit holding the
  device's last untouched event before its earliest touched one (the whole device when there is
  none, or when campaign changes split sessions). That visit start stays a visit start, so the
  result equals a full rebuild; session ids (hash of device and first message) are stable, and
  device_session_number continues from the visits before.
-#}
{%- set split_on_campaign = var('session_new_on_campaign_change', false) -%}
{%- set max_seconds = var('session_max_duration_seconds', none) -%}

{{
    config(
        materialized='incremental',
        incremental_strategy=refresh_strategy('delete+insert'),
        partition_by=refresh_partition_by(),
        unique_key='message_id',
        on_schema_change='append_new_columns',
        pre_hook="{{ remove_events_beyond_as_of() }}"
    )
}}

with

{% if is_incremental() -%}
touched_devices as (

    select
        device_id,
        min(occurred_at) as first_touched_at
    from {{ ref('int_events_stitched') }}
    where
        stitched_at > {{ max_timestamp_literal(this, 'stitched_at') }}
        and is_user_initiated
    group by device_id

),

previous as (

    select
        previous.device_id,
        previous.message_id,
        previous.occurred_at,
        previous.visit_started_at,
        previous.device_session_number,
        previous.seconds_since_previous_event,
        touched_devices.first_touched_at
    from {{ this }} as previous
    inner join touched_devices
        on previous.device_id = touched_devices.device_id

),

{#- Equality joins only below: an inequality join here makes DuckDB estimate billions of
    restart rows and build the join with the event table on the event side (it spills). -#}
restart as (

    -- where each touched device is re-sessionized from (null: from its first event): the
    -- start of the visit holding its last untouched event, else its first touched event
    select
        touched_devices.device_id,
        {% if split_on_campaign -%}
            cast(null as {{ dbt.type_timestamp() }})
        {%- else -%}
            coalesce(before_touch.restart_at, touched_devices.first_touched_at)
        {%- endif %} as restart_at
    from touched_devices
    left join (
        select
            device_id,
            max(visit_started_at) as restart_at
        from previous
        where occurred_at < first_touched_at
        group by device_id
    ) as before_touch
        on touched_devices.device_id = before_touch.device_id

),

restart_offsets as (

    -- the device's sessions before the restart point: the restart visit's first session - 1
    select
        restart.device_id,
        restart.restart_at,
        coalesce(visit_sessions.first_session_number - 1, 0) as session_number_offset
    from restart
    left join (
        select
            device_id,
            visit_started_at,
            min(device_session_number) as first_session_number
        from previous
        group by device_id, visit_started_at
    ) as visit_sessions
        on
            restart.device_id = visit_sessions.device_id
            and restart.restart_at = visit_sessions.visit_started_at

),

events as (

    -- the touched devices' user-initiated events from the restart point
    select all_events.*
    from {{ ref('int_events_stitched') }} as all_events
    inner join restart_offsets
        on all_events.device_id = restart_offsets.device_id
    where
        all_events.is_user_initiated
        and (restart_offsets.restart_at is null or all_events.occurred_at >= restart_offsets.restart_at)

),
{%- else -%}
events as {{ inline_cte() }} (

    -- only user-initiated messages form sessions: page, screen, and track from a client
    -- channel (identify, alias, group and server-side messages never do)
    select * from {{ ref('int_events_stitched') }}
    where is_user_initiated

),
{%- endif %}

event_keys as (

    -- the windows below run on this narrow projection; the wide rows are joined back once
    select
        message_id,
        device_id,
        user_key,
        occurred_at,
        received_at{% if split_on_campaign %},
        utm_campaign{% endif %}
    from events

),

{% if split_on_campaign -%}
with_gaps as (

    select
        *,
        {{ seconds_between(
            'lag(occurred_at) over (partition by device_id order by ' ~ event_order() ~ ')',
            'occurred_at'
        ) }} as seconds_since_previous_event,
        lag(user_key) over (partition by device_id order by {{ event_order() }}) as previous_user_key
    from event_keys

),

{% if split_on_campaign -%}
campaign_blocks as (

    -- campaign_block n = the events from the device's n-th campaign-tagged event on
    select
        *,
        sum(case when utm_campaign is not null then 1 else 0 end) over (
            partition by device_id
            order by {{ event_order() }}
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
            partition by device_id order by {{ event_order() }}
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
            -- another person on the device (a shared device) starts a new session
            when coalesce(user_key <> previous_user_key, false) then 1
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
            order by {{ event_order() }}
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
            order by {{ event_order() }}
            rows between unbounded preceding and unbounded following
        ) as session_first_message_id,
        row_number() over (
            partition by device_id, device_visit_number, visit_part
            order by {{ event_order() }}
        ) as session_event_number
    from chunked

),

numbered as (

    select
        *,
        sum(case when session_event_number = 1 then 1 else 0 end) over (
            partition by device_id
            order by {{ event_order() }}
            rows between unbounded preceding and current row
        ) as device_session_number
    from with_session_first

),

{%- else -%}
{#- Three window passes, all partitioned by device and ordered by (occurred_at, message_id). -#}
with_gaps as (

    select
        *,
        lag(occurred_at) over (partition by device_id order by {{ event_order() }})
            as previous_occurred_at,
        lag(user_key) over (partition by device_id order by {{ event_order() }})
            as previous_user_key
    from event_keys

),

flagged as (

    -- a gap strictly greater than the timeout starts a new visit (exact seconds)
    select
        *,
        {{ seconds_between('previous_occurred_at', 'occurred_at') }} as seconds_since_previous_event,
        previous_occurred_at is null
        or {{ seconds_between('previous_occurred_at', 'occurred_at') }} > {{ var('session_timeout_seconds') }}
        -- another person on the device (a shared device) starts a new visit
        or coalesce(user_key <> previous_user_key, false)
            as is_visit_start
    from with_gaps

),

with_visit_start as (

    -- occurred_at only grows along the device, so the running max of visit-start times is the
    -- start of the current visit
    select
        *,
        max(case when is_visit_start then occurred_at end) over (
            partition by device_id
            order by {{ event_order() }}
            rows between unbounded preceding and current row
        ) as visit_started_at,
        row_number() over (partition by device_id order by {{ event_order() }}) as device_event_number
    from flagged

),

chunked as (

    -- the maximum length: an event at start + k * max seconds or later opens part k; a
    -- session starts at a visit start or where the part changes within the visit
    select
        *,
        {% if max_seconds is not none -%}
            is_visit_start
            or floor({{ seconds_between('visit_started_at', 'occurred_at') }} / {{ max_seconds }})
            > floor({{ seconds_between('visit_started_at', 'previous_occurred_at') }} / {{ max_seconds }})
        {%- else -%}
            is_visit_start
        {%- endif %} as is_session_start
    from with_visit_start

),

numbered as (

    select
        *,
        {{ last_value_ignoring_nulls('case when is_session_start then message_id end') }} over (
            partition by device_id
            order by {{ event_order() }}
            rows between unbounded preceding and current row
        ) as session_first_message_id,
        device_event_number + 1
        - {{ last_value_ignoring_nulls('case when is_session_start then device_event_number end') }} over (
            partition by device_id
            order by {{ event_order() }}
            rows between unbounded preceding and current row
        ) as session_event_number,
        sum(case when is_session_start then 1 else 0 end) over (
            partition by device_id
            order by {{ event_order() }}
            rows between unbounded preceding and current row
        ) as device_session_number
    from chunked

),

{% endif -%}
session_keys as (

    select
        numbered.message_id,
        {{ dbt.hash(dbt.concat(['numbered.device_id', "'|'", 'numbered.session_first_message_id'])) }}
            as session_id,
        {% if is_incremental() -%}
            numbered.device_session_number + restart_offsets.session_number_offset
                as device_session_number,
            numbered.session_event_number,
            -- the restart event keeps its gap to the (unchanged) event before it
            coalesce(numbered.seconds_since_previous_event, previous.seconds_since_previous_event)
                as seconds_since_previous_event,
        {%- else -%}
            numbered.device_session_number,
            numbered.session_event_number,
            numbered.seconds_since_previous_event,
        {%- endif %}
        numbered.visit_started_at
    from numbered
    {%- if is_incremental() %}
    inner join restart_offsets
        on numbered.device_id = restart_offsets.device_id
    left join previous
        on numbered.message_id = previous.message_id
    {%- endif %}

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
        session_keys.visit_started_at,
        events.stitched_at
    from events
    inner join session_keys
        on events.message_id = session_keys.message_id

)

{{ select_upserted_rows('message_id', 'cast(occurred_at as date)') }}
