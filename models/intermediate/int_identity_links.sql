with

events as (

    select * from {{ ref('stg_events') }}
    where occurred_at <= {{ as_of() }}

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
    where evidence_rank = 1

)

select * from final
