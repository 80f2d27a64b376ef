{#-
  Incremental (delete+insert on message_id). A run recomputes
    - the staged events loaded since the last run (loaded_at above this table's max) and those
      that as_of has made visible since (occurred_at above this table's max), and
    - retroactive stitching: rows not identified by their own message whose user no longer
      matches the identity map (a new identify/alias, or an earlier link, re-stitches old events).
  stitched_at marks the rows (re)written by a run; int_sessionized_events reads it to find the
  device identities to re-sessionize. The pre-hook removes rows beyond a lowered as_of.
-#}
{%- set stitched_columns = ['message_id', 'message_type', 'event_name', 'event_type', 'user_key', 'user_id', 'is_identified', 'device_id', 'anonymous_id', 'occurred_at', 'received_at', 'page_path', 'page_url', 'page_referrer', 'page_title', 'page_name', 'utm_source', 'utm_medium', 'utm_campaign', 'device_type', 'channel', 'product_id', 'category', 'price', 'order_id', 'revenue', 'currency', 'campaign_id', 'campaign_name', 'experiment_id', 'variation', 'has_analytics_consent', 'loaded_at', 'stitched_at'] -%}
{%- set stitched_at -%}
    cast('{{ run_started_at.strftime("%Y-%m-%d %H:%M:%S.%f") }}' as {{ dbt.type_timestamp() }})
{%- endset -%}
{{
    config(
        materialized='incremental',
        incremental_strategy='delete+insert',
        unique_key='message_id',
        on_schema_change='append_new_columns',
        pre_hook="{% if is_incremental() %}delete from {{ this }} where occurred_at > {{ as_of() }}{% endif %}"
    )
}}

with

events as (

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
        events.has_analytics_consent,
        events.loaded_at,
        {{ stitched_at }} as stitched_at
    from events
    left join identity_map
        on events.anonymous_id = identity_map.anonymous_id
    -- consent: an event whose own context denies analytics never reaches behavior
    where coalesce(events.has_analytics_consent, true)

),

{% if is_incremental() -%}
restitched as (

    -- earlier rows whose stitched user changed with the identity map
    select
        {%- for column in stitched_columns %}
        {%- if column == 'user_key' %}
        coalesce(identity_map.user_id, previous.anonymous_id) as user_key,
        {%- elif column == 'user_id' %}
        identity_map.user_id as user_id,
        {%- elif column == 'stitched_at' %}
        {{ stitched_at }} as stitched_at
        {%- else %}
        previous.{{ column }},
        {%- endif %}
        {%- endfor %}
    from {{ this }} as previous
    left join identity_map
        on previous.anonymous_id = identity_map.anonymous_id
    where
        not previous.is_identified
        and previous.user_id is distinct from identity_map.user_id
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

select * from final
