{#-
  Events that arrived more than var event_lookback_hours after they occurred (received_at -
  occurred_at), up to as_of, with the session they belong to. The incremental event models
  merge them exactly (int_sessionized_events re-sessionizes the device from the visit before
  the late event, however late it is); this table counts and shows them, since each one makes
  an incremental run rewrite older sessions and can change marts for days already reported.
-#}
with

events as (

    select * from {{ ref('stg_events') }}
    where
        occurred_at <= {{ as_of() }}
        and {{ seconds_between('occurred_at', 'received_at') }} > {{ var('event_lookback_hours') }} * 3600

),

sessions as (

    select
        message_id,
        session_id,
        device_session_number,
        session_event_number
    from {{ ref('int_sessionized_events') }}

),

final as (

    select
        events.message_id,
        events.message_type,
        events.event_type,
        coalesce(events.anonymous_id, events.user_id) as device_id,
        events.occurred_at,
        events.received_at,
        events.loaded_at,
        {{ seconds_between('events.occurred_at', 'events.received_at') }} as lateness_seconds,
        cast({{ seconds_between('events.occurred_at', 'events.received_at') }} / 3600.0 as double)
            as lateness_hours,
        sessions.session_id,
        sessions.device_session_number,
        sessions.session_event_number
    from events
    left join sessions
        on events.message_id = sessions.message_id

)

select * from final
