{#-
  Each user's latest consent statement. Incremental by changed users
  (macros/incremental/incremental_refresh.sql): a run recomputes the users of events staged or revealed
  by as_of since its last run, and the former users of their anonymous ids.
-#}
{{
    config(
        materialized='incremental',
        incremental_strategy=refresh_strategy('append'),
        partition_by=refresh_partition_by(),
        pre_hook="{{ changed_staged_keys_pre_hook('user_key') }}",
        post_hook=changed_keys_post_hooks('stg_events', 'loaded_at')
    )
}}
{%- set refresh = changed_staged_keys('user_key') %}
{%- set carried = ['occurred_at', 'received_at', 'has_analytics_consent', 'consent_categories'] %}
{#- int_events_stitched is not read: the edge only orders the two. Each keys the events of
    its users against the identity map and, at 10M events, fills DuckDB's memory limit on its
    own; run at the same time on dbt's two threads, both ran out of memory. #}
-- depends_on: {{ ref('int_events_stitched') }}

with

identity_map as (

    select * from {{ ref('int_identity_map') }}

),

{% if refresh.filtered -%}
changed_keys as (

    {{ refresh.keys_sql }}

),

changed_anonymous_ids as (

    -- the anonymous ids whose events may be keyed to a changed user
    select anonymous_id from identity_map
    where user_key in (select * from changed_keys) and anonymous_id is not null
    union
    select * from changed_keys

),

{% endif -%}
events as (

    -- every event, including those that deny analytics: they carry the consent state
    select
        message_id,
        user_id,
        anonymous_id,
        occurred_at,
        received_at,
        has_analytics_consent,
        consent_categories
    from {{ ref('stg_events') }}
    where
        occurred_at <= {{ as_of() }}
        and has_analytics_consent is not null
        {%- if refresh.filtered %}
        and (
            user_id in (select * from changed_keys)
            or anonymous_id in (select * from changed_anonymous_ids)
        )
        {%- endif %}

),

to_key as (

    select
        message_id,
        user_id as own_user_id,
        anonymous_id,
        occurred_at,
        received_at,
        has_analytics_consent,
        consent_categories
    from events

),

stitched as (

    -- the same stitching as int_events_stitched, the consent columns carried along
    {{ identity_keyed('to_key', carry=carried) }}

),

final as (

    -- the latest statement per user: an aggregate over the event order (occurred_at,
    -- received_at, message_id), not a window that would sort every event
    {%- set order = ['occurred_at', 'received_at', 'message_id'] %}
    select
        user_key,
        {{ latest_row_value('has_analytics_consent', order) }} as has_analytics_consent,
        {{ latest_row_value('consent_categories', order) }} as consent_categories,
        max(occurred_at) as consent_stated_at,
        {{ latest_row_value('message_id', order) }} as consent_message_id
    from stitched
    {%- if refresh.filtered %}
    where user_key in (select * from changed_keys)
    {%- endif %}
    group by user_key

)

{{ select_refreshed_keys(refresh, 'user_key') }}
