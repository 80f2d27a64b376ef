with

links as (

    select * from {{ ref('int_identity_links') }}

),

identity_map as (

    select * from {{ ref('int_identity_map') }}

),

final as (

    -- every link of an anonymous_id that links to more than one user_id, with the
    -- link the conflict rule kept (the earliest) and the ones it ignored
    select
        links.anonymous_id,
        links.user_id,
        links.first_linked_at,
        links.first_link_message_id,
        links.first_link_source,
        links.evidence_count,
        identity_map.user_id as resolved_user_id,
        links.user_id = identity_map.user_id as is_resolved_link,
        identity_map.linked_user_count
    from links
    inner join identity_map
        on links.anonymous_id = identity_map.anonymous_id
    where identity_map.has_conflicting_links

)

select * from final
