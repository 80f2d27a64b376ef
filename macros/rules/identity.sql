{#-
  Identity and activity rules shared by the identity graph, stitching, sessions and activity.
  Documented in macros/rules/_rules.yml.
-#}

{#- The order of events wherever an order matters (sessions, first/last values, stitching):
    occurred_at, then received_at, then message_id. The v1 contract has no client sequence
    field, so none is used. -#}
{% macro event_order(prefix='', descending=false) -%}
    {%- set direction = ' desc' if descending else '' -%}
    {{ prefix }}occurred_at{{ direction }}, {{ prefix }}received_at{{ direction }}, {{ prefix }}message_id{{ direction }}
{%- endmacro %}

{#- A user-initiated message (activity): page and screen, and track from a client channel (a
    channel not in var session_excluded_channels). identify, alias and group never are.
    MERGE NOTE: the ORDERS part adds stg_events.channel (top-level channel, else
    context.channel) and stg_events.is_user_initiated with this same rule; until then channel
    is stg_events.channel as staged today (context.channel). -#}
{% macro is_user_initiated(message_type, channel) -%}
    (
        {{ message_type }} in ('page', 'screen')
        or (
            {{ message_type }} = 'track'
            and coalesce({{ channel }}, '') not in {{ lower_sql_list(var('session_excluded_channels')) }}
        )
    )
{%- endmacro %}

{#- The user_key of a person never identified: the anonymousId itself, or 'anonymous:' and
    the anonymousId when that string is also some userId (ids are namespaced: an anonymousId
    equal to a userId is a different person, so it must not share the user's key). -#}
{% macro anonymous_user_key(anonymous_id, is_also_user_id) -%}
    case
        when {{ is_also_user_id }} then {{ dbt.concat(["'anonymous:'", anonymous_id]) }}
        else {{ anonymous_id }}
    end
{%- endmacro %}

{#- True when an event comes at or after a point in event order (occurred_at, received_at,
    message_id); a null point is the beginning of time. -#}
{% macro event_at_or_after(event_prefix, point_prefix) -%}
    (
        {{ point_prefix }}at is null
        or {{ event_prefix }}occurred_at > {{ point_prefix }}at
        or (
            {{ event_prefix }}occurred_at = {{ point_prefix }}at
            and (
                {{ event_prefix }}received_at > {{ point_prefix }}received_at
                or (
                    {{ event_prefix }}received_at = {{ point_prefix }}received_at
                    and {{ event_prefix }}message_id >= {{ point_prefix }}message_id
                )
            )
        )
    )
{%- endmacro %}

{#- True when an event comes strictly before a point in event order; a null point is the end
    of time. -#}
{% macro event_before(event_prefix, point_prefix) -%}
    (
        {{ point_prefix }}at is null
        or {{ event_prefix }}occurred_at < {{ point_prefix }}at
        or (
            {{ event_prefix }}occurred_at = {{ point_prefix }}at
            and (
                {{ event_prefix }}received_at < {{ point_prefix }}received_at
                or (
                    {{ event_prefix }}received_at = {{ point_prefix }}received_at
                    and {{ event_prefix }}message_id < {{ point_prefix }}message_id
                )
            )
        )
    )
{%- endmacro %}

{#- Stitching: (message_id, user_key, user_id) of the rows of a relation with columns
    message_id, own_user_id (the message's own userId), anonymous_id, occurred_at and
    received_at. A message carrying a userId belongs to that user's person; an anonymous one
    to the person its device maps to at the message's place in event order (shared devices
    are split by period, int_identity_map); a device never identified is its own person
    (anonymous_user_key). `carry`: more columns of the relation, passed through unchanged. -#}
{% macro identity_keyed(relation, carry=[]) -%}
    select
        to_key.message_id,
        {%- for column in carry %}
        to_key.{{ column }},
        {%- endfor %}
        case
            when to_key.own_user_id is not null then coalesce(user_map.user_key, to_key.own_user_id)
            when device_periods.user_key is not null then device_periods.user_key
            else {{ anonymous_user_key('to_key.anonymous_id', 'known_user_ids.user_id is not null') }}
        end as user_key,
        coalesce(to_key.own_user_id, device_periods.user_id) as user_id
    from {{ relation }} as to_key
    left join (
        select user_id, user_key from {{ ref('int_identity_map') }}
        where id_type = 'user'
    ) as user_map
        on to_key.own_user_id = user_map.user_id
    left join (
        select * from {{ ref('int_identity_map') }}
        where id_type = 'anonymous'
    ) as device_periods
        on
            to_key.own_user_id is null
            and to_key.anonymous_id = device_periods.anonymous_id
            and {{ event_at_or_after('to_key.', 'device_periods.valid_from_') }}
            and {{ event_before('to_key.', 'device_periods.valid_to_') }}
    left join (
        -- every userId: an anonymous id equal to one is keyed apart (ids are namespaced)
        select distinct user_id from {{ ref('stg_events') }}
        where user_id is not null and occurred_at <= {{ as_of() }}
    ) as known_user_ids
        on
            to_key.own_user_id is null
            and to_key.anonymous_id = known_user_ids.user_id
{%- endmacro %}
