-- Who was in a segment at the end of a day (UTC), from the membership history.
-- dbt compile --select segment_members_at --vars '{segment: seg_cart_abandoners, on_date: "2026-11-01"}'
-- In the serving copy the same is a table macro:
--   select * from segments.segment_members_at('cart_abandoners', date '2026-11-01')
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
        history.entered_at,
        history.exited_at
    from history
    left join users
        on history.user_key = users.user_key
    where
        history.segment = '{{ var("segment", "seg_cart_abandoners") }}'
        -- in the segment at the end of the day: entered by then, not exited by then
        and history.entered_at < cast('{{ var("on_date", "2026-11-01") }}' as date) + interval 1 day
        and (
            history.exited_at is null
            or history.exited_at >= cast('{{ var("on_date", "2026-11-01") }}' as date) + interval 1 day
        )

)

select * from final
