{#-
  Each user's preferred engagement hour and weekday. Incremental by changed users
  (macros/incremental/incremental_refresh.sql); its keys include every user of a re-sessionized device.
-#}
{{
    config(
        materialized='incremental',
        incremental_strategy=refresh_strategy('append'),
        partition_by=refresh_partition_by(),
        pre_hook="{{ changed_keys_pre_hook('user_key') }}",
        post_hook=changed_keys_post_hooks()
    )
}}
{%- set refresh = changed_keys('user_key') %}

with

{% if refresh.filtered -%}
changed_keys as (

    {{ refresh.keys_sql }}

),

{% endif -%}
events as (

    select * from {{ ref('int_events_stitched') }}
    where
        event_type in ('email_open', 'email_click')
        {%- if refresh.filtered %}
        and user_key in (select * from changed_keys)
        {%- endif %}

),

session_starts as (

    select * from {{ ref('int_sessionized_events') }}
    where
        is_session_start
        {%- if refresh.filtered %}
        and user_key in (select * from changed_keys)
        {%- endif %}

),

signals as (

    -- when the user engages: email opens and clicks, and visit (session) starts
    select
        user_key,
        occurred_at
    from events
    union all
    select
        user_key,
        occurred_at
    from session_starts

),

with_parts as (

    select
        user_key,
        cast({{ hour_of_day('occurred_at') }} as {{ dbt.type_bigint() }}) as engagement_hour,
        cast({{ iso_day_of_week('occurred_at') }} as {{ dbt.type_bigint() }}) as engagement_weekday
    from signals

),

by_hour as (

    select
        user_key,
        engagement_hour,
        count(*) as signals,
        row_number() over (
            partition by user_key order by count(*) desc, engagement_hour
        ) as hour_rank,
        sum(count(*)) over (partition by user_key) as total_signals
    from with_parts
    group by user_key, engagement_hour

),

by_weekday as (

    select
        user_key,
        engagement_weekday,
        row_number() over (
            partition by user_key order by count(*) desc, engagement_weekday
        ) as weekday_rank
    from with_parts
    group by user_key, engagement_weekday

),

final as (

    -- the most frequent UTC hour and ISO weekday; ties go to the earliest
    select
        by_hour.user_key,
        by_hour.engagement_hour as preferred_engagement_hour_utc,
        by_weekday.engagement_weekday as preferred_engagement_weekday,
        cast(by_hour.total_signals as {{ dbt.type_bigint() }}) as engagement_signals
    from by_hour
    inner join by_weekday
        on
            by_hour.user_key = by_weekday.user_key
            and by_weekday.weekday_rank = 1
    where by_hour.hour_rank = 1

)

{{ select_refreshed_keys(refresh, 'user_key') }}
