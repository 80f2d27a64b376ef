-- A segment's size at the end of each day, with users entered and exited that day.
with

sizes as (

    select * from {{ ref('segment_sizes_daily') }}

),

final as (

    select
        size_date,
        members,
        users_entered,
        users_exited
    from sizes
    where segment = '{{ var("segment", "seg_cart_abandoners") }}'

)

select * from final
order by size_date
