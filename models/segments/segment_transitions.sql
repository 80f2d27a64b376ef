with

lifecycle_history as (

    select * from {{ ref('int_user_lifecycle_history') }}

),

consent as (

    select * from {{ ref('int_user_consent') }}

),

moves as (

    -- a user without analytics consent is left out, like in every segment
    select
        lifecycle_history.user_key,
        lifecycle_history.previous_stage as from_stage,
        lifecycle_history.lifecycle_stage as to_stage,
        cast(lifecycle_history.entered_at as date) as transition_date
    from lifecycle_history
    left join consent
        on lifecycle_history.user_key = consent.user_key
    where
        lifecycle_history.previous_stage is not null
        and coalesce(consent.has_analytics_consent, true)

),

final as (

    select
        transition_date,
        from_stage,
        to_stage,
        count(distinct user_key) as users_moved,
        count(*) as transitions
    from moves
    group by transition_date, from_stage, to_stage

)

select * from final
