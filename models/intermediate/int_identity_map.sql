with

links as (

    select * from {{ ref('int_identity_links') }}

),

ranked as (

    -- conflict rule: when one anonymous_id links to several user_ids, the earliest
    -- link wins (ties broken by the linking message_id, then user_id)
    select
        *,
        row_number() over (
            partition by anonymous_id
            order by first_linked_at, first_link_message_id, user_id
        ) as link_rank,
        count(*) over (partition by anonymous_id) as linked_user_count
    from links

),

final as (

    select
        anonymous_id,
        user_id,
        first_linked_at as linked_at,
        first_link_message_id as link_message_id,
        first_link_source as link_source,
        linked_user_count,
        linked_user_count > 1 as has_conflicting_links
    from ranked
    where link_rank = 1

)

select * from final
