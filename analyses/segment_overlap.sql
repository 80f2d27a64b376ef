-- Members shared by every pair of segments now, and the share of the first segment's members.
with

memberships as (

    select * from {{ ref('segment_memberships') }}

),

pairs as (

    select
        a.segment,
        b.segment as other_segment,
        count(*) as shared_members
    from memberships as a
    inner join memberships as b
        on a.user_key = b.user_key
    group by a.segment, b.segment

),

sizes as (

    select
        segment,
        count(*) as members
    from memberships
    group by segment

),

final as (

    select
        pairs.segment,
        pairs.other_segment,
        pairs.shared_members,
        round(pairs.shared_members / sizes.members, 3) as share_of_segment
    from pairs
    inner join sizes
        on pairs.segment = sizes.segment

)

select * from final
order by segment, other_segment
