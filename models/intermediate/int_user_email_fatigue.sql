{#-
  Each user's last N deliveries and how many were opened. Incremental by changed users
  (macros/incremental/incremental_refresh.sql).
-#}
{{
    config(
        materialized='incremental',
        incremental_strategy='append',
        pre_hook="{{ changed_keys_pre_hook('user_key') }}",
        post_hook=changed_keys_post_hooks()
    )
}}
{%- set refresh = changed_keys('user_key') %}
{%- set email_key = 'coalesce(campaign_id, message_id)' %}

with

events as (

    select * from {{ ref('int_events_stitched') }}
    where
        event_type in ('email_delivered', 'email_open')
        {%- if refresh.filtered %}
        and user_key in ({{ refresh.keys_sql }})
        {%- endif %}

),

deliveries as (

    -- one row per delivered email (campaign), at its first delivery
    select
        user_key,
        {{ email_key }} as email_key,
        min(occurred_at) as delivered_at
    from events
    where event_type = 'email_delivered'
    group by user_key, {{ email_key }}

),

opens as (

    select
        user_key,
        {{ email_key }} as email_key,
        min(occurred_at) as first_opened_at
    from events
    where event_type = 'email_open'
    group by user_key, {{ email_key }}

),

recent_deliveries as (

    select
        deliveries.user_key,
        deliveries.email_key,
        deliveries.delivered_at,
        opens.first_opened_at,
        row_number() over (
            partition by deliveries.user_key
            order by deliveries.delivered_at desc, deliveries.email_key desc
        ) as recency_rank
    from deliveries
    left join opens
        on
            deliveries.user_key = opens.user_key
            and deliveries.email_key = opens.email_key

),

final as (

    -- the user's last N deliveries (var email_fatigue_deliveries) and how many were opened
    select
        user_key,
        count(*) as recent_deliveries,
        cast(sum(case when first_opened_at is not null then 1 else 0 end) as {{ dbt.type_bigint() }})
            as recent_deliveries_opened,
        min(delivered_at) as recent_deliveries_since
    from recent_deliveries
    where recency_rank <= {{ var('email_fatigue_deliveries') }}
    group by user_key

)

select * from final
