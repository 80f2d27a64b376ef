{#-
  One row per user and email: the email identity rule and "a click implies an open" in one
  place, read by int_user_email_fatigue (per-user email features, fatigue) and
  fct_campaign_engagement. Email events only (a few per user and campaign): a full rebuild.
-#}
{%- set email_event_types = ['email_delivered', 'email_open', 'email_click'] -%}
{%- set email_id_key = dbt.concat(["'email_id:'", 'email_id']) -%}
{%- set campaign_key = dbt.concat(["'campaign:'", 'campaign_id']) -%}

with

events as (

    select * from {{ ref('int_events_stitched') }}
    where event_type in {{ lower_sql_list(email_event_types) }}

),

staged as (

    select
        message_id,
        properties
    from {{ ref('stg_events') }}
    where event_type in {{ lower_sql_list(email_event_types) }}

),

with_email_id as (

    -- properties.email_id (Segment's email spec), read from the staged payload
    select
        events.message_id,
        events.user_key,
        events.event_type,
        events.occurred_at,
        events.campaign_id,
        events.campaign_name,
        {{ json_string('staged.properties', '$.email_id') }} as email_id
    from events
    left join staged
        on events.message_id = staged.message_id

),

deliveries as (

    -- every delivery event with its email: its email_id, else its campaign (one send of a
    -- campaign to a user); each delivery counts for matching, not only an email's first
    select
        user_key,
        campaign_id,
        case
            when email_id is not null then {{ email_id_key }}
            when campaign_id is not null then {{ campaign_key }}
        end as email_key,
        occurred_at as delivered_at
    from with_email_id
    where
        event_type = 'email_delivered'
        and (email_id is not null or campaign_id is not null)

),

engagements_by_campaign as (

    -- an open or click without email_id: the user's delivery of the same campaign, the
    -- latest at or before it, else the earliest after it
    select
        engagements.message_id,
        deliveries.email_key,
        row_number() over (
            partition by engagements.message_id
            order by
                case when deliveries.delivered_at <= engagements.occurred_at then 0 else 1 end asc,
                case when deliveries.delivered_at <= engagements.occurred_at then deliveries.delivered_at end desc,
                deliveries.delivered_at asc,
                deliveries.email_key asc
        ) as delivery_rank
    from with_email_id as engagements
    inner join deliveries
        on
            engagements.user_key = deliveries.user_key
            and engagements.campaign_id = deliveries.campaign_id
    where
        engagements.event_type in ('email_open', 'email_click')
        and engagements.email_id is null

),

keyed as (

    -- every email event with its email: its own email_id, else (opens and clicks) the
    -- matched delivery, else its campaign; events naming neither are no email
    select
        with_email_id.*,
        coalesce(
            case
                when with_email_id.email_id is not null
                    then {{ dbt.concat(["'email_id:'", 'with_email_id.email_id']) }}
            end,
            engagements_by_campaign.email_key,
            case
                when with_email_id.campaign_id is not null
                    then {{ dbt.concat(["'campaign:'", 'with_email_id.campaign_id']) }}
            end
        ) as email_key
    from with_email_id
    left join engagements_by_campaign
        on
            with_email_id.message_id = engagements_by_campaign.message_id
            and engagements_by_campaign.delivery_rank = 1

),

final as (

    -- an open or a click delivers and opens the email (a click implies an open); the
    -- campaign is any event's campaign_id for the email
    select
        user_key,
        email_key,
        max(email_id) as email_id,
        max(campaign_id) as campaign_id,
        max(campaign_name) as campaign_name,
        coalesce(
            min(case when event_type = 'email_delivered' then occurred_at end),
            min(occurred_at)
        ) as delivered_at,
        count(case when event_type = 'email_delivered' then 1 end) > 0 as has_delivery_event,
        min(case when event_type in ('email_open', 'email_click') then occurred_at end) as first_opened_at,
        max(case when event_type in ('email_open', 'email_click') then occurred_at end) as last_opened_at,
        cast(count(case when event_type = 'email_open' then 1 end) as {{ dbt.type_bigint() }}) as open_events,
        min(case when event_type = 'email_click' then occurred_at end) as first_clicked_at,
        cast(count(case when event_type = 'email_click' then 1 end) as {{ dbt.type_bigint() }}) as click_events
    from keyed
    where email_key is not null
    group by user_key, email_key

)

select * from final
