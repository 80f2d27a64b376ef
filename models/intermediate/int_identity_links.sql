{#-
  The edges of the identity graph seen up to as_of, one row per edge with its first and last
  evidence. Ids are namespaced: an anonymousId and a userId are different nodes even when the
  strings are equal.
    - device links (anonymous_id -> user_id): identify, any other message carrying both ids,
      an alias's own anonymousId, and an alias whose previousId is its own anonymousId;
    - user links (previous_user_id -> user_id): an alias whose previousId is not its own
      anonymousId (an explicit merge of two userIds; previousId = userId is no edge).
  link_key is the edge's source id (anonymous_id or previous_user_id).
  Incremental by changed source ids (macros/incremental/incremental_refresh.sql): a run
  recomputes the edges of the anonymous (and alias previous) ids of events staged or revealed
  by as_of since its last run.
-#}
{{
    config(
        materialized='incremental',
        incremental_strategy=refresh_strategy('append'),
        partition_by=refresh_partition_by(),
        pre_hook="{{ changed_staged_keys_pre_hook('link_key') }}",
        post_hook=changed_keys_post_hooks('stg_events', 'loaded_at')
    )
}}
{%- set refresh = changed_staged_keys('link_key') %}

with

{% if refresh.filtered -%}
changed_ids as (

    {{ refresh.keys_sql }}

),

{% endif -%}
events as {{ inline_cte(not refresh.filtered) }} (

    select * from {{ ref('stg_events') }}
    where occurred_at <= {{ as_of() }}
    {%- if refresh.filtered %}
        and (
            anonymous_id in (select * from changed_ids)
            or previous_id in (select * from changed_ids)
        )
    {%- endif %}

),

link_evidence as (

    -- identify, and any other message carrying both ids: anonymousId -> userId
    select
        'device' as link_type,
        anonymous_id,
        cast(null as {{ dbt.type_string() }}) as previous_user_id,
        user_id,
        occurred_at,
        received_at,
        message_id,
        case
            when message_type = 'identify' then 'identify'
            when message_type = 'alias' then 'alias'
            else 'event'
        end as link_source
    from events
    where
        anonymous_id is not null
        and user_id is not null

    union all

    -- alias: previousId -> userId. The previousId is an anonymous id when it is the alias's
    -- own anonymousId (that device link is above), else a userId (an explicit merge)
    select
        'user' as link_type,
        cast(null as {{ dbt.type_string() }}) as anonymous_id,
        previous_id as previous_user_id,
        user_id,
        occurred_at,
        received_at,
        message_id,
        'alias' as link_source
    from events
    where
        message_type = 'alias'
        and previous_id is not null
        and user_id is not null
        and previous_id <> user_id
        and (anonymous_id is null or previous_id <> anonymous_id)

),

keyed as (

    select
        *,
        coalesce(anonymous_id, previous_user_id) as link_key
    from link_evidence

),

ranked as (

    select
        *,
        row_number() over (
            partition by link_type, link_key, user_id
            order by {{ event_order() }}
        ) as evidence_rank,
        max(occurred_at) over (partition by link_type, link_key, user_id) as last_linked_at,
        count(*) over (partition by link_type, link_key, user_id) as evidence_count
    from keyed

),

final as (

    select
        link_type,
        link_key,
        anonymous_id,
        previous_user_id,
        user_id,
        occurred_at as first_linked_at,
        received_at as first_link_received_at,
        message_id as first_link_message_id,
        link_source as first_link_source,
        last_linked_at,
        evidence_count
    from ranked
    where
        evidence_rank = 1
        {%- if refresh.filtered %}
        -- an alias event read for its own anonymous id may name another previous id
        and link_key in (select * from changed_ids)
        {%- endif %}

)

{{ select_refreshed_keys(refresh, 'link_key') }}
