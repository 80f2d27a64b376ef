-- Every segment spell of one user (by userId or user_key), newest first.
with

history as (

    select * from {{ ref('segment_membership_history') }}

),

users as (

    select * from {{ ref('dim_users') }}

),

final as (

    select
        history.segment,
        history.entered_at,
        history.exited_at,
        history.is_current
    from history
    inner join users
        on history.user_key = users.user_key
    where
        users.user_id = '{{ var("user", "usr_0001") }}'
        or users.user_key = '{{ var("user", "usr_0001") }}'

)

select * from final
order by entered_at desc
