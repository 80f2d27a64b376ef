{#-
  Every observed anonymousId -> userId link with its first evidence. Incremental by changed
  anonymous ids (macros/incremental/incremental_refresh.sql): a run recomputes the links of the anonymous
  (and alias previous) ids of events staged or revealed by as_of since its last run.
-#}
{{
    config(
        materialized='incremental',
        incremental_strategy='append',
        pre_hook="{{ changed_staged_keys_pre_hook('anonymous_id') }}",
        post_hook=changed_keys_post_hooks('stg_events', 'loaded_at')
    )
}}
{%- set refresh = changed_staged_keys('anonymous_id') %}

with

{% if refresh.filtered -%}
changed_ids as (

    {{ refresh.keys_sql }}

),

{% endif -%}
events as (

    select * from {{ ref('stg_events') }}
    where occurred_at <= {{ as_of() }}
    {%- if refresh.filtered %}
        and (
            anonymous_id in (select anonymous_id from changed_ids)
            or previous_id in (select anonymous_id from changed_ids)
        )
    {%- endif %}

),

link_evidence as (

    -- identify, and any other message carrying both ids: anonymousId -> userId
    select
        anonymous_id,
        user_id,
        occurred_at,
        message_id,
        case when message_type = 'identify' then 'identify' else 'event' end as link_source
    from events
    where
        anonymous_id is not null
        and user_id is not null
        and message_type <> 'alias'

    union all

    -- alias: previousId -> userId
    select
        previous_id as anonymous_id,
        user_id,
        occurred_at,
        message_id,
        'alias' as link_source
    from events
    where
        message_type = 'alias'
        and previous_id is not null
        and user_id is not null
        and previous_id <> user_id

    union all

    -- an alias message may also carry its own anonymousId
    select
        anonymous_id,
        user_id,
        occurred_at,
        message_id,
        'alias' as link_source
    from events
    where
        message_type = 'alias'
        and anonymous_id is not null
        and user_id is not null

),

ranked as (

    select
        *,
        row_number() over (
            partition by anonymous_id, user_id
            order by occurred_at, message_id
        ) as evidence_rank,
        count(*) over (partition by anonymous_id, user_id) as evidence_count
    from link_evidence

),

final as (

    select
        anonymous_id,
        user_id,
        occurred_at as first_linked_at,
        message_id as first_link_message_id,
        link_source as first_link_source,
        evidence_count
    from ranked
    where
        evidence_rank = 1
        {%- if refresh.filtered %}
        -- an alias event read for its own anonymous id may name another previous id
        and anonymous_id in (select anonymous_id from changed_ids)
        {%- endif %}

)

select * from final
