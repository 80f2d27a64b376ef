-- dim_users.lifecycle_stage and the current spell of int_user_lifecycle_history must agree
-- for every user: a row here is a user whose stages differ, or who is in only one of them.
with

users as (

    select * from {{ ref('dim_users') }}

),

current_spells as (

    select * from {{ ref('int_user_lifecycle_history') }}
    where is_current

),

final as (

    select
        coalesce(users.user_key, current_spells.user_key) as user_key,
        users.lifecycle_stage as dim_users_stage,
        current_spells.lifecycle_stage as history_stage
    from users
    full outer join current_spells
        on users.user_key = current_spells.user_key
    where
        users.user_key is null
        or current_spells.user_key is null
        or users.lifecycle_stage <> current_spells.lifecycle_stage

)

select * from final
