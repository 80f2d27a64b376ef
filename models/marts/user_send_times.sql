{#-
  The best hour and weekday to send each user a message: the user's own, from engagement
  history (int_user_send_time via dim_users), else the population's.
-#}

with

users as (

    select * from {{ ref('dim_users') }}

),

with_history as (

    select * from users
    where
        preferred_engagement_hour_utc is not null
        and preferred_engagement_weekday is not null

),

hour_votes as (

    -- the fallback: the hour most users with history prefer (ties: the earliest)
    select
        preferred_engagement_hour_utc as send_hour_utc,
        row_number() over (order by count(*) desc, preferred_engagement_hour_utc) as vote_rank
    from with_history
    group by preferred_engagement_hour_utc

),

weekday_votes as (

    select
        preferred_engagement_weekday as send_weekday,
        row_number() over (order by count(*) desc, preferred_engagement_weekday) as vote_rank
    from with_history
    group by preferred_engagement_weekday

),

fallback_hour as (

    -- one row always (an aggregate without group by): the top hour, else
    -- var send_time_default_hour_utc when nobody has history yet
    select coalesce(max(send_hour_utc), {{ var('send_time_default_hour_utc') }}) as send_hour_utc
    from hour_votes
    where vote_rank = 1

),

fallback_weekday as (

    select coalesce(max(send_weekday), {{ var('send_time_default_weekday') }}) as send_weekday
    from weekday_votes
    where vote_rank = 1

),

final as (

    select
        users.user_key,
        users.user_id,
        cast(
            coalesce(users.preferred_engagement_hour_utc, fallback_hour.send_hour_utc) as {{ dbt.type_int() }}
        ) as send_hour_utc,
        cast(
            coalesce(users.preferred_engagement_weekday, fallback_weekday.send_weekday) as {{ dbt.type_int() }}
        ) as send_weekday,
        case
            when users.preferred_engagement_hour_utc is not null then 'history'
            else 'population'
        end as send_time_source
    from users
    cross join fallback_hour
    cross join fallback_weekday

)

select * from final
