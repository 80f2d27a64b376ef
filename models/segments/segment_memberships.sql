with

history as (

    select * from {{ ref('segment_membership_history') }}

),

final as (

    select
        user_key,
        segment,
        entered_at
    from history
    where is_current

)

select * from final
