with

history as (

    select * from {{ ref('segment_membership_history') }}

),

users as (

    select * from {{ ref('dim_users') }}

),

final as (

    select
        history.user_key,
        users.user_id,
        history.segment,
        history.entered_at
    from history
    left join users
        on history.user_key = users.user_key
    where history.is_current

)

select * from final
