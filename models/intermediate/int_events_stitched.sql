{#-
  Stitching (int_identity_map): an event carrying a userId belongs to that user's person; an
  anonymous event to the person its device maps to at the event's place in event order
  (occurred_at, received_at, message_id: shared devices are split by period); an event of a
  device never identified to the anonymous person (user_key: anonymous_user_key macro).

  Incremental (delete+insert on message_id). A run recomputes
    - the staged events loaded since the last run (loaded_at above this table's max) and those
      that as_of has made visible since (occurred_at above this table's max), and
    - retroactive stitching: rows whose person no longer matches the identity map (a new
      identify or alias, an earlier link, or a late alias merging two users re-stitches old
      events, identified ones included).
  Only earlier rows that the new events can re-key are keyed again (rekey_ids): a row's key
  depends on the map's entries for its own userId and its anonymousId, and those entries change
  only with links from new events. So: the ids those events carry (anonymous, previous, user),
  widened to whole persons of the new map (every member's userId, every anonymous id mapped to
  the person). A merge keys all members of the merged person again; a device's periods change
  only with its own new links. That holds while the map only grows: a backfill, and an as_of
  moved back (links after it leave the map; the model's watermark in
  intermediate.incremental_watermarks tells), key every row again. At 10M events keying all
  10M earlier rows was 57 s of a 190 s refresh.
  stitched_at marks the rows (re)written by a run; int_sessionized_events reads it to find the
  device identities to re-sessionize. The pre-hook removes rows beyond a lowered as_of.
-#}
{%- set stitched_columns = ['message_id', 'message_type', 'event_name', 'event_type', 'user_key', 'user_id', 'is_identified', 'device_id', 'anonymous_id', 'occurred_at', 'received_at', 'page_path', 'page_url', 'page_referrer', 'page_title', 'page_name', 'utm_source', 'utm_medium', 'utm_campaign', 'device_type', 'channel', 'product_id', 'category', 'price', 'order_id', 'revenue', 'currency', 'campaign_id', 'campaign_name', 'experiment_id', 'variation', 'is_forced_exposure', 'has_analytics_consent', 'is_user_initiated', 'loaded_at', 'stitched_at'] -%}
{%- set stitched_at -%}
    cast('{{ run_started_at.strftime("%Y-%m-%d %H:%M:%S.%f") }}' as {{ dbt.type_timestamp() }})
{%- endset -%}
{{
    config(
        materialized='incremental',
        incremental_strategy=refresh_strategy('delete+insert'),
        partition_by=refresh_partition_by(),
        unique_key='message_id',
        on_schema_change='append_new_columns',
        pre_hook="{{ remove_events_beyond_as_of() }}",
        post_hook=changed_keys_post_hooks('stg_events', 'loaded_at')
    )
}}
{#- every earlier row is keyed again when the identity map may have lost entries: a backfill
    re-stages days, and an as_of moved back (or no recorded as_of yet) drops later links -#}
{%- set key_every_row = backfill_running() or (is_incremental() and not refresh_run().filtered) -%}

with

events as {{ inline_cte(not is_incremental()) }} (

    select * from {{ ref('stg_events') }}
    where
        occurred_at <= {{ as_of() }}
        {%- if is_incremental() %}
        and (
            loaded_at > {{ max_timestamp_literal(this, 'loaded_at') }}
            or occurred_at > {{ max_timestamp_literal(this, 'occurred_at') }}
            -- a backfill re-stitches every event of its day
            or {{ backfill_window_condition('occurred_at') }}
        )
        {%- endif %}

),

{% if is_incremental() and not key_every_row -%}
carried_ids as (

    -- the ids the new events carry
    select anonymous_id as id from events where anonymous_id is not null
    union
    select previous_id from events where previous_id is not null
    union
    select user_id from events where user_id is not null

),

new_event_persons as (

    -- the persons of the new map those ids belong to: a device maps to every person who
    -- identified on it, so the users its links name are among them
    {{ expand_person_keys('select id from carried_ids', ref('int_identity_map')) }}

),

rekey_ids as (

    -- every userId and anonymous id whose earlier rows the new map may key differently
    select person_key as id from new_event_persons
    union
    select mapped.anonymous_id from {{ ref('int_identity_map') }} as mapped
    where
        mapped.anonymous_id is not null
        and mapped.user_key in (select person_key from new_event_persons)

),

{% endif -%}
to_key as (

    -- the events to stitch: the new ones and (incremental) the earlier rows they can re-key
    -- (rekey_ids; every earlier row when key_every_row), with the userId the message carries
    select
        message_id,
        user_id as own_user_id,
        anonymous_id,
        occurred_at,
        received_at
    from events
    {%- if is_incremental() %}

    union all

    select
        message_id,
        case when is_identified then user_id end as own_user_id,
        anonymous_id,
        occurred_at,
        received_at
    from {{ this }}
    where
        message_id not in (select message_id from events)
        {%- if not key_every_row %}
        and (
            anonymous_id in (select id from rekey_ids)
            or (is_identified and user_id in (select id from rekey_ids))
        )
        {%- endif %}
    {%- endif %}

),

keyed as (

    {{ identity_keyed('to_key') }}

),

stitched as (

    select
        events.message_id,
        events.message_type,
        events.event_name,
        events.event_type,
        keyed.user_key,
        keyed.user_id,
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
        events.is_forced_exposure,
        events.has_analytics_consent,
        events.is_user_initiated,
        events.loaded_at,
        {{ stitched_at }} as stitched_at
    from events
    inner join keyed
        on events.message_id = keyed.message_id
    -- consent: an event whose own context denies analytics never reaches behavior
    where coalesce(events.has_analytics_consent, true)

),

{% if is_incremental() -%}
restitched as (

    -- earlier rows whose person changed with the identity map
    select
        {%- for column in stitched_columns %}
        {%- if column in ('user_key', 'user_id') %}
        keyed.{{ column }},
        {%- elif column == 'stitched_at' %}
        {{ stitched_at }} as stitched_at
        {%- else %}
        previous.{{ column }},
        {%- endif %}
        {%- endfor %}
    from {{ this }} as previous
    inner join keyed
        on previous.message_id = keyed.message_id
    where
        (
            previous.user_key is distinct from keyed.user_key
            or previous.user_id is distinct from keyed.user_id
        )
        and previous.message_id not in (select message_id from stitched)

),

{% endif -%}
final as (

    select * from stitched
    {%- if is_incremental() %}
    union all
    select * from restitched
    {%- endif %}

)

{{ select_upserted_rows('message_id', 'cast(loaded_at as date)') }}
