{#-
  One row per session. Incremental by changed devices (macros/incremental/incremental_refresh.sql): a run
  recomputes every session of the devices whose events int_events_stitched (re)wrote since the
  last run, so merged, split and renumbered sessions are replaced whole.
-#}
{{
    config(
        materialized='incremental',
        incremental_strategy='append',
        pre_hook="{{ changed_keys_pre_hook('device_id') }}",
        post_hook=changed_keys_post_hooks()
    )
}}
{%- set refresh = changed_keys('device_id') %}

with

events as (

    select * from {{ ref('int_sessionized_events') }}
    {%- if refresh.filtered %}
    where device_id in ({{ refresh.keys_sql }})
    {%- endif %}

),

page_views_ranked as (

    -- page views, and screen views for apps (a screen has a name, not a path)
    select
        session_id,
        coalesce(page_path, page_name) as page_path,
        row_number() over (partition by session_id order by occurred_at, message_id) as first_rank,
        row_number() over (
            partition by session_id order by occurred_at desc, message_id desc
        ) as last_rank
    from events
    where event_type in ('page_view', 'screen_view')

),

landing_and_exit as (

    select
        session_id,
        max(case when first_rank = 1 then page_path end) as landing_page,
        max(case when last_rank = 1 then page_path end) as exit_page
    from page_views_ranked
    group by session_id

),

session_totals as (

    select
        session_id,
        min(occurred_at) as started_at,
        max(occurred_at) as ended_at,
        count(*) as event_count,
        sum(case when event_type = 'page_view' then 1 else 0 end) as page_views,
        sum(case when event_type in ('page_view', 'screen_view') then 1 else 0 end) as screen_or_page_views,
        sum(
            case when event_type in {{ sql_list(interaction_event_types()) }} then 1 else 0 end
        ) as interactions,
        max(case when event_type = 'add_to_cart' then 1 else 0 end) as add_to_cart_flag,
        max(case when event_type = 'purchase' then 1 else 0 end) as purchase_flag,
        sum(case when event_type = 'purchase' then coalesce(revenue, 0) else 0 end) as revenue,
        -- attributes of the session's first event (attribution) and its stitched user
        max(case when session_event_number = 1 then device_id end) as device_id,
        max(case when session_event_number = 1 then user_key end) as user_key,
        max(user_id) as user_id,
        max(case when session_event_number = 1 then page_referrer end) as referrer,
        max(case when session_event_number = 1 then utm_source end) as utm_source,
        max(case when session_event_number = 1 then utm_medium end) as utm_medium,
        max(case when session_event_number = 1 then utm_campaign end) as utm_campaign,
        max(case when session_event_number = 1 then channel end) as channel,
        max(case when session_event_number = 1 then device_type end) as device_type
    from events
    group by session_id

),

final as (

    select
        session_totals.session_id,
        session_totals.user_key,
        session_totals.user_id,
        session_totals.device_id,
        session_totals.started_at,
        session_totals.ended_at,
        {{ seconds_between('session_totals.started_at', 'session_totals.ended_at') }}
            as duration_seconds,
        session_totals.event_count,
        session_totals.page_views,
        landing_and_exit.landing_page,
        landing_and_exit.exit_page,
        session_totals.referrer,
        session_totals.utm_source,
        session_totals.utm_medium,
        session_totals.utm_campaign,
        session_totals.channel,
        {{ acquisition_channel(
            'session_totals.utm_source', 'session_totals.utm_medium',
            'session_totals.utm_campaign', 'session_totals.referrer'
        ) }} as acquisition_channel,
        session_totals.device_type,
        session_totals.screen_or_page_views <= 1 and session_totals.interactions = 0 as is_bounce,
        session_totals.add_to_cart_flag = 1 as has_add_to_cart,
        session_totals.purchase_flag = 1 as has_purchase,
        cast(session_totals.revenue as double) as revenue
    from session_totals
    left join landing_and_exit
        on session_totals.session_id = landing_and_exit.session_id

)

select * from final
