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
events as {{ inline_cte(not refresh.filtered) }} (

    -- every event, including those that deny analytics: they carry the consent state
    select * from {{ ref('stg_events') }}
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
        received_at
    from events

),

keyed as (

    -- the same stitching as int_events_stitched
    {{ identity_keyed('to_key') }}

),

stitched as (

    select
        keyed.user_key,
        events.message_id,
        events.occurred_at,
        events.received_at,
        events.has_analytics_consent,
        events.consent_categories
    from events
    inner join keyed
        on events.message_id = keyed.message_id

),

ranked as (

    select
        *,
        row_number() over (
            partition by user_key
            order by {{ event_order(descending=true) }}
        ) as recency_rank
    from stitched

),

final as (

    select
        user_key,
        has_analytics_consent,
        consent_categories,
        occurred_at as consent_stated_at,
        message_id as consent_message_id
    from ranked
    where
        recency_rank = 1
        {%- if refresh.filtered %}
        and user_key in (select * from changed_keys)
        {%- endif %}

)

{{ select_refreshed_keys(refresh, 'user_key') }}
