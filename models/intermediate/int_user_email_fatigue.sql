{#-
  Each user's email features: emails delivered, opened (a click is an open) and clicked, the
  emails opened in the open window, and the last N deliveries and how many were opened.
  Emails and their identity come from int_user_emails. Incremental by changed users
  (macros/incremental/incremental_refresh.sql), and users with an email event that left the
  open window as as_of moved.
-#}
{%- set windows = [('day', var('engaged_non_converter_open_window_days'))] -%}
{{
    config(
        materialized='incremental',
        incremental_strategy=refresh_strategy('append'),
        partition_by=refresh_partition_by(),
        pre_hook="{{ changed_keys_pre_hook('user_key', [('day', var('engaged_non_converter_open_window_days'))]) }}",
        post_hook=changed_keys_post_hooks()
    )
}}
{%- set refresh = changed_keys('user_key', windows) %}

with

emails as (

    select * from {{ ref('int_user_emails') }}
    {%- if refresh.filtered %}
    where user_key in ({{ refresh.keys_sql }})
    {%- endif %}

),

as_of as (

    select
        {{ window_start('day', var('engaged_non_converter_open_window_days')) }}
            as email_open_window_start

),

ranked as (

    -- latest delivery first; an email opened or clicked without a delivery event was
    -- delivered at its first open
    select
        *,
        row_number() over (
            partition by user_key
            order by delivered_at desc, email_key desc
        ) as recency_rank
    from emails

),

final as (

    select
        ranked.user_key,
        count(*) as emails_delivered,
        count(ranked.first_opened_at) as emails_opened,
        count(ranked.first_clicked_at) as emails_clicked,
        -- an email opened (or clicked) in the last N days: its latest open is less than N days old
        count(case when ranked.last_opened_at > as_of.email_open_window_start then 1 end)
            as emails_opened_open_window,
        max(ranked.delivered_at) as last_email_delivered_at,
        max(ranked.last_opened_at) as last_email_engagement_at,
        -- the user's last N deliveries (var email_fatigue_deliveries) and how many were opened
        count(case when ranked.recency_rank <= {{ var('email_fatigue_deliveries') }} then 1 end)
            as recent_deliveries,
        count(case
            when ranked.recency_rank <= {{ var('email_fatigue_deliveries') }} then ranked.first_opened_at
        end) as recent_deliveries_opened,
        min(case when ranked.recency_rank <= {{ var('email_fatigue_deliveries') }} then ranked.delivered_at end)
            as recent_deliveries_since
    from ranked
    cross join as_of
    group by ranked.user_key

)

{{ select_refreshed_keys(refresh, 'user_key') }}
