-- The SQL floor: every table `dbt build` makes, as plain DuckDB SQL in one script.
--
-- Run by bench/sql_floor.py on a warehouse holding raw.events (the same data dbt builds from);
-- it writes schema `floor` (one table per dbt model, same names, same rows). Placeholders the
-- runner fills: __AS_OF__ (the as_of var, 'YYYY-MM-DD HH:MM:SS') and __SEED_CSV__
-- (seeds/event_type_map.csv). Every dbt var is inlined at its default (dbt_project.yml).
--
-- Written from the models as of 2026-11-22 (issue 4 in progress): dbt's compiled SQL of each
-- model, refs pointed at `floor.`, with hand rewrites where plain SQL can do the same work
-- cheaper: int_sessionized_events (3 window sorts instead of 5). segment_membership_history
-- is its first (non-incremental) build. Keep in sync: see bench/README.md.

create schema if not exists floor;

-- event_type_map (the dbt seed)
create or replace table floor.event_type_map as
select * from read_csv('__SEED_CSV__', header = true,
    columns = {'message_type': 'varchar', 'event_name': 'varchar', 'event_type': 'varchar'});

-- stg_events
create or replace table floor.stg_events as
with
events as (
    select * from raw.events
),
event_type_map as (
    select
        lower(trim(message_type)) as message_type_key,
        lower(trim(event_name)) as event_name_key,
        event_type
    from floor.event_type_map
),
duplicated_ids as (
    -- stg_events ranks only the messages that occur more than once (normally none)
    select message_id from events group by message_id having count(*) > 1
),
deduplicated as (
    select *, 1 as message_rank from events
    where message_id not in (select message_id from duplicated_ids)
    union all
    select * from (
        select
            *,
            row_number() over (
                partition by message_id
                order by received_at, loaded_at, load_id
            ) as message_rank
        from events
        where message_id in (select message_id from duplicated_ids)
    ) as ranked
    where message_rank = 1
),
unpacked as (
    -- one parse of the payload for every field (see json_string_list)
    select
        message_id,
        lower(trim(message_type)) as message_type,
        event_name,
        user_id,
        anonymous_id,
        occurred_at as client_occurred_at,
        sent_at,
        received_at,
        loaded_at,
        load_id,
        source,
        json_extract_string(payload, ['$.previousId', '$.properties', '$.context.consent.categoryPreferences', '$.traits.email', '$.context.traits.email', '$.properties.path', '$.context.page.path', '$.properties.url', '$.context.page.url', '$.properties.referrer', '$.context.page.referrer', '$.properties.title', '$.context.page.title', '$.context.campaign.source', '$.context.campaign.medium', '$.context.campaign.name', '$.context.device.type', '$.context.channel', '$.properties.product_id', '$.properties.category', '$.properties.price', '$.properties.order_id', '$.properties.revenue', '$.properties.currency', '$.properties.campaign_id', '$.properties.campaign_name', '$.properties.experiment_id', '$.properties.variation_name']) as json_values
    from deduplicated
    where message_rank = 1
),
extracted as (
    select
        message_id,
        message_type,
        event_name,
        user_id,
        anonymous_id,
        client_occurred_at,
        sent_at,
        received_at,
        loaded_at,
        load_id,
        source,
        json_values[1] as previous_id,
        json_values[2] as properties,
        json_values[3] as consent_preferences,
        json_values[4] as traits_email,
        json_values[5] as context_traits_email,
        json_values[6] as properties_path,
        json_values[7] as context_page_path,
        json_values[8] as properties_url,
        json_values[9] as context_page_url,
        json_values[10] as properties_referrer,
        json_values[11] as context_page_referrer,
        json_values[12] as properties_title,
        json_values[13] as context_page_title,
        json_values[14] as utm_source,
        json_values[15] as utm_medium,
        json_values[16] as utm_campaign,
        json_values[17] as device_type,
        json_values[18] as channel,
        json_values[19] as product_id,
        json_values[20] as category,
        json_values[21] as price_text,
        json_values[22] as order_id,
        json_values[23] as revenue_text,
        json_values[24] as currency,
        json_values[25] as campaign_id,
        json_values[26] as campaign_name,
        json_values[27] as experiment_id,
        json_values[28] as variation,
        message_type in ('page', 'screen') as is_page_or_screen
    from unpacked
),
typed as (
    select
        extracted.message_id,
        extracted.message_type,
        extracted.event_name,
        coalesce(by_name.event_type, by_type.event_type, 'other') as event_type,
        extracted.user_id,
        extracted.anonymous_id,
        extracted.previous_id,
        -- Segment's skew correction: receivedAt - (sentAt - timestamp)
        case
            when extracted.sent_at is not null and extracted.client_occurred_at is not null
                then make_timestamp(epoch_us(extracted.client_occurred_at) + epoch_us(extracted.received_at) - epoch_us(extracted.sent_at))
            else coalesce(extracted.client_occurred_at, extracted.received_at)
        end as occurred_at,
        extracted.client_occurred_at,
        extracted.sent_at,
        extracted.received_at,
        extracted.loaded_at,
        extracted.load_id,
        extracted.source,
        extracted.properties,
        coalesce(extracted.properties_path, extracted.context_page_path) as page_path,
        coalesce(extracted.properties_url, extracted.context_page_url) as page_url,
        coalesce(extracted.properties_referrer, extracted.context_page_referrer) as page_referrer,
        coalesce(extracted.properties_title, extracted.context_page_title) as page_title,
        case when extracted.is_page_or_screen then extracted.event_name end as page_name,
        extracted.utm_source,
        extracted.utm_medium,
        extracted.utm_campaign,
        lower(extracted.device_type) as device_type,
        lower(extracted.channel) as channel,
        extracted.product_id,
        extracted.category,
        try_cast(extracted.price_text as double) as price,
        extracted.order_id,
        try_cast(extracted.revenue_text as double) as revenue,
        extracted.currency,
        extracted.campaign_id,
        extracted.campaign_name,
        extracted.experiment_id,
        extracted.variation,
        case
        when json_extract_string(lower(extracted.consent_preferences), '$.analytics') in ('true', '1') then true
        when json_extract_string(lower(extracted.consent_preferences), '$.analytics') in ('false', '0') then false
    end as has_analytics_consent,
        case
            when coalesce(extracted.traits_email, extracted.context_traits_email) is not null
                then md5(cast(lower(trim(coalesce(extracted.traits_email, extracted.context_traits_email))) as TEXT))
        end as email_hash
    from extracted
    left join event_type_map as by_name
        on
            extracted.message_type = by_name.message_type_key
            and lower(trim(extracted.event_name)) = by_name.event_name_key
    left join event_type_map as by_type
        on
            extracted.message_type = by_type.message_type_key
            and by_type.event_name_key = '*'
),
final as (
    select * from typed
)
select * from final;

-- int_identity_links
create or replace table floor.int_identity_links as
with
events as (
    select * from floor.stg_events
    where occurred_at <= cast('__AS_OF__' as timestamp)
),
link_evidence as (
    -- identify, and any other message carrying both ids: anonymousId -> userId
    select
        anonymous_id,
        user_id,
        occurred_at,
        message_id,
        case when message_type = 'identify' then 'identify' else 'event' end as link_source
    from events
    where
        anonymous_id is not null
        and user_id is not null
        and message_type <> 'alias'
    union all
    -- alias: previousId -> userId
    select
        previous_id as anonymous_id,
        user_id,
        occurred_at,
        message_id,
        'alias' as link_source
    from events
    where
        message_type = 'alias'
        and previous_id is not null
        and user_id is not null
        and previous_id <> user_id
    union all
    -- an alias message may also carry its own anonymousId
    select
        anonymous_id,
        user_id,
        occurred_at,
        message_id,
        'alias' as link_source
    from events
    where
        message_type = 'alias'
        and anonymous_id is not null
        and user_id is not null
),
ranked as (
    select
        *,
        row_number() over (
            partition by anonymous_id, user_id
            order by occurred_at, message_id
        ) as evidence_rank,
        count(*) over (partition by anonymous_id, user_id) as evidence_count
    from link_evidence
),
final as (
    select
        anonymous_id,
        user_id,
        occurred_at as first_linked_at,
        message_id as first_link_message_id,
        link_source as first_link_source,
        evidence_count
    from ranked
    where evidence_rank = 1
)
select * from final;

-- int_identity_map
create or replace table floor.int_identity_map as
with
links as (
    select * from floor.int_identity_links
),
ranked as (
    -- conflict rule: when one anonymous_id links to several user_ids, the earliest
    -- link wins (ties broken by the linking message_id, then user_id)
    select
        *,
        row_number() over (
            partition by anonymous_id
            order by first_linked_at, first_link_message_id, user_id
        ) as link_rank,
        count(*) over (partition by anonymous_id) as linked_user_count
    from links
),
final as (
    select
        anonymous_id,
        user_id,
        first_linked_at as linked_at,
        first_link_message_id as link_message_id,
        first_link_source as link_source,
        linked_user_count,
        linked_user_count > 1 as has_conflicting_links
    from ranked
    where link_rank = 1
)
select * from final;

-- int_identity_conflicts
create or replace table floor.int_identity_conflicts as
with
links as (
    select * from floor.int_identity_links
),
identity_map as (
    select * from floor.int_identity_map
),
final as (
    -- every link of an anonymous_id that links to more than one user_id, with the
    -- link the conflict rule kept (the earliest) and the ones it ignored
    select
        links.anonymous_id,
        links.user_id,
        links.first_linked_at,
        links.first_link_message_id,
        links.first_link_source,
        links.evidence_count,
        identity_map.user_id as resolved_user_id,
        links.user_id = identity_map.user_id as is_resolved_link,
        identity_map.linked_user_count
    from links
    inner join identity_map
        on links.anonymous_id = identity_map.anonymous_id
    where identity_map.has_conflicting_links
)
select * from final;

-- int_events_stitched
create or replace table floor.int_events_stitched as
with
events as (
    select * from floor.stg_events
    where occurred_at <= cast('__AS_OF__' as timestamp)
),
identity_map as (
    select * from floor.int_identity_map
),
stitched as (
    select
        events.message_id,
        events.message_type,
        events.event_name,
        events.event_type,
        coalesce(events.user_id, identity_map.user_id, events.anonymous_id) as user_key,
        coalesce(events.user_id, identity_map.user_id) as user_id,
        -- the message itself names the user (its own userId): the user is known from here on
        events.user_id is not null as is_identified,
        coalesce(events.anonymous_id, events.user_id) as device_id,
        events.anonymous_id,
        events.occurred_at,
        events.received_at,
        events.page_path,
        events.page_url,
        events.page_referrer,
        events.page_title,
        events.page_name,
        events.utm_source,
        events.utm_medium,
        events.utm_campaign,
        events.device_type,
        events.channel,
        events.product_id,
        events.category,
        events.price,
        events.order_id,
        events.revenue,
        events.currency,
        events.campaign_id,
        events.campaign_name,
        events.experiment_id,
        events.variation,
        events.has_analytics_consent
    from events
    left join identity_map
        on events.anonymous_id = identity_map.anonymous_id
    -- consent: an event whose own context denies analytics never reaches behavior
    where coalesce(events.has_analytics_consent, true)
),
final as (
    select * from stitched
)
select * from final;

-- int_sessionized_events (hand-optimized: three sorts over one window instead of five)
create or replace table floor.int_sessionized_events as
with
events as (
    select * from floor.int_events_stitched
    where channel is null or channel not in ('server')
),
gaps as (
    select
        *,
        lag(occurred_at) over w as previous_occurred_at,
        (epoch_us(occurred_at) - epoch_us(lag(occurred_at) over w)) / 1000000.0
            as seconds_since_previous_event,
        row_number() over w as device_event_number
    from events
    window w as (partition by device_id order by occurred_at, message_id)
),
visits as (
    -- the visit's start: the latest visit start so far (occurred_at is ordered)
    select
        *,
        max(case
            when seconds_since_previous_event is null or seconds_since_previous_event > 1800
                then occurred_at
        end) over w as visit_started_at
    from gaps
    window w as (
        partition by device_id order by occurred_at, message_id
        rows between unbounded preceding and current row
    )
),
flagged as (
    -- a session starts with a visit, or when the 12 h cut grid (from the visit start) is crossed
    select
        *,
        case
            when previous_occurred_at is null or seconds_since_previous_event > 1800 then 1
            when floor((epoch_us(occurred_at) - epoch_us(visit_started_at)) / 1000000.0 / 43200)
                <> floor((epoch_us(previous_occurred_at) - epoch_us(visit_started_at)) / 1000000.0 / 43200)
                then 1
            else 0
        end as is_start
    from visits
),
numbered as (
    select
        *,
        sum(is_start) over w as device_session_number,
        last_value(case when is_start = 1 then message_id end ignore nulls) over w
            as session_first_message_id,
        device_event_number + 1
            - max(case when is_start = 1 then device_event_number end) over w
            as session_event_number
    from flagged
    window w as (
        partition by device_id order by occurred_at, message_id
        rows between unbounded preceding and current row
    )
)
select
    md5(device_id || '|' || session_first_message_id) as session_id,
    device_session_number,
    session_event_number,
    session_event_number = 1 as is_session_start,
    seconds_since_previous_event,
    message_id, message_type, event_name, event_type, user_key, user_id, device_id, anonymous_id,
    occurred_at, page_path, page_url, page_referrer, page_title, page_name, utm_source, utm_medium,
    utm_campaign, device_type, channel, product_id, category, price, order_id, revenue, currency,
    campaign_id, campaign_name, experiment_id, variation
from numbered;

-- int_user_activity
create or replace table floor.int_user_activity as
with
events as (
    select * from floor.int_events_stitched
),
as_of as (
    select
        cast('__AS_OF__' as timestamp) as as_of,
    (cast('__AS_OF__' as timestamp) + cast(-30 as bigint) * interval 1 day) as window_30d_start,
    (cast('__AS_OF__' as timestamp) + cast(-365 as bigint) * interval 1 day) as rfm_window_start,
    (cast('__AS_OF__' as timestamp) + cast(-365 as bigint) * interval 1 day) as window_365d_start,
    (cast('__AS_OF__' as timestamp) + cast(-48 as bigint) * interval 1 hour) as high_intent_window_start,
    (cast('__AS_OF__' as timestamp) + cast(-7 as bigint) * interval 1 day)
            as browse_window_start,
    (cast('__AS_OF__' as timestamp) + cast(-90 as bigint) * interval 1 day)
            as email_open_window_start,
    (cast('__AS_OF__' as timestamp) + cast(-30 as bigint) * interval 1 day) as engagement_window_start,
    (cast('__AS_OF__' as timestamp) + cast(-14 as bigint) * interval 1 day) as churn_recent_start,
    (cast('__AS_OF__' as timestamp) + cast(-42 as bigint) * interval 1 day) as churn_baseline_start
),
scored as (
    select
        *,
        case event_type
        when 'add_to_cart' then 5
        when 'checkout_started' then 5
        when 'click' then 1
        when 'email_click' then 4
        when 'email_open' then 2
        when 'page_view' then 1
        when 'product_view' then 2
        when 'purchase' then 10
        when 'remove_from_cart' then 1
        when 'screen_view' then 1
        when 'search' then 2
        when 'signup' then 5
        when 'video_play' then 2
        else 0
    end as engagement_points
    from events
),
aggregated as (
    select
        events.user_key,
        max(events.user_id) as user_id,
        -- activity
        min(events.occurred_at) as first_seen_at,
        max(events.occurred_at) as last_seen_at,
        min(case when events.is_identified then events.occurred_at end) as first_identified_at,
        count(distinct cast(events.occurred_at as date)) as active_days,
        count(distinct case
            when events.occurred_at > as_of.window_30d_start then cast(events.occurred_at as date)
        end) as active_days_30d,
        count(*) as events,
        count(case when events.event_type = 'page_view' then 1 end) as page_view_count,
        count(case when events.event_type = 'screen_view' then 1 end) as screen_view_count,
        count(case when events.event_type = 'click' then 1 end) as click_count,
        count(case when events.event_type = 'video_play' then 1 end) as video_play_count,
        count(case when events.event_type = 'search' then 1 end) as search_count,
        count(case when events.event_type = 'product_view' then 1 end) as product_view_count,
        count(case when events.event_type = 'add_to_cart' then 1 end) as add_to_cart_count,
        count(case when events.event_type = 'remove_from_cart' then 1 end) as remove_from_cart_count,
        count(case when events.event_type = 'checkout_started' then 1 end) as checkout_started_count,
        count(case when events.event_type = 'purchase' then 1 end) as purchase_count,
        count(case when events.event_type = 'signup' then 1 end) as signup_count,
        count(case when events.event_type = 'email_delivered' then 1 end) as email_delivered_count,
        count(case when events.event_type = 'email_open' then 1 end) as email_open_count,
        count(case when events.event_type = 'email_click' then 1 end) as email_click_count,
        count(case when events.event_type = 'experiment_exposure' then 1 end) as experiment_exposure_count,
        count(case when events.event_type = 'consent_updated' then 1 end) as consent_updated_count,
        count(case when events.event_type = 'identify' then 1 end) as identify_count,
        count(case when events.event_type = 'alias' then 1 end) as alias_count,
        count(case when events.event_type = 'other' then 1 end) as other_count,
        -- browsing
        count(distinct case when events.event_type = 'product_view' then events.product_id end)
            as distinct_products_viewed,
        count(distinct case when events.event_type = 'product_view' then events.category end)
            as categories_viewed,
        count(case
            when events.event_type = 'product_view'
                and events.price >= 150 then 1
        end) as high_end_product_views,
        avg(case when events.event_type = 'product_view' then events.price end) as avg_viewed_price,
        max(case when events.event_type = 'product_view' then events.occurred_at end) as last_product_view_at,
        count(case
            when events.event_type = 'product_view' and events.occurred_at > as_of.browse_window_start
                then 1
        end) as product_views_browse_window,
        count(case
            when events.event_type = 'add_to_cart' and events.occurred_at > as_of.browse_window_start
                then 1
        end) as cart_adds_browse_window,
        count(case
            when events.event_type in ('page_view', 'screen_view')
    and (
        lower(events.page_path) in ('/pricing')
        or lower(events.page_name) in ('pricing')
    ) and events.occurred_at > as_of.high_intent_window_start then 1
        end) as pricing_views_intent_window,
        max(case when events.event_type in ('page_view', 'screen_view')
    and (
        lower(events.page_path) in ('/pricing')
        or lower(events.page_name) in ('pricing')
    ) then events.occurred_at end) as last_pricing_view_at,
        -- buying
        min(case when events.event_type in ('add_to_cart', 'checkout_started') then events.occurred_at end)
            as first_cart_intent_at,
        max(case when events.event_type = 'add_to_cart' then events.occurred_at end) as last_cart_add_at,
        count(distinct case when events.event_type = 'purchase' then coalesce(events.order_id, events.message_id) end) as orders,
        sum(case when events.event_type = 'purchase' then coalesce(events.revenue, 0) else 0 end) as revenue,
        min(case when events.event_type = 'purchase' then events.occurred_at end) as first_order_at,
        max(case when events.event_type = 'purchase' then events.occurred_at end) as last_order_at,
        count(distinct case
            when events.event_type = 'purchase' and events.occurred_at > as_of.window_365d_start
                then coalesce(events.order_id, events.message_id)
        end) as orders_365d,
        sum(case
            when events.event_type = 'purchase' and events.occurred_at > as_of.window_365d_start
                then coalesce(events.revenue, 0)
            else 0
        end) as revenue_365d,
        count(distinct case
            when events.event_type = 'purchase' and events.occurred_at > as_of.rfm_window_start
                then coalesce(events.order_id, events.message_id)
        end) as orders_rfm_window,
        sum(case
            when events.event_type = 'purchase' and events.occurred_at > as_of.rfm_window_start
                then coalesce(events.revenue, 0)
            else 0
        end) as revenue_rfm_window,
        -- email (one email = one campaign; the message when it names none)
        count(distinct case when events.event_type = 'email_delivered' then coalesce(events.campaign_id, events.message_id) end)
            as emails_delivered,
        count(distinct case when events.event_type = 'email_open' then coalesce(events.campaign_id, events.message_id) end) as emails_opened,
        count(distinct case when events.event_type = 'email_click' then coalesce(events.campaign_id, events.message_id) end) as emails_clicked,
        count(distinct case
            when events.event_type = 'email_open' and events.occurred_at > as_of.email_open_window_start
                then coalesce(events.campaign_id, events.message_id)
        end) as emails_opened_open_window,
        max(case when events.event_type = 'email_delivered' then events.occurred_at end)
            as last_email_delivered_at,
        max(case when events.event_type in ('email_open', 'email_click') then events.occurred_at end)
            as last_email_engagement_at,
        -- engagement points
        sum(case
            when events.occurred_at > as_of.engagement_window_start then events.engagement_points
            else 0
        end) as engagement_points_window,
        sum(case
            when events.occurred_at > as_of.churn_recent_start then events.engagement_points
            else 0
        end) as engagement_points_recent,
        sum(case
            when
                events.occurred_at > as_of.churn_baseline_start
                and events.occurred_at <= as_of.churn_recent_start
                then events.engagement_points
            else 0
        end) as engagement_points_baseline
    from scored as events
    cross join as_of
    group by events.user_key
),
final as (
    select * from aggregated
)
select * from final;

-- int_user_consent
create or replace table floor.int_user_consent as
with
events as (
    -- every event, including those that deny analytics: they carry the consent state
    select * from floor.stg_events
    where
        occurred_at <= cast('__AS_OF__' as timestamp)
        and has_analytics_consent is not null
),
identity_map as (
    select * from floor.int_identity_map
),
stitched as (
    select
        coalesce(events.user_id, identity_map.user_id, events.anonymous_id) as user_key,
        events.message_id,
        events.occurred_at,
        events.has_analytics_consent
    from events
    left join identity_map
        on events.anonymous_id = identity_map.anonymous_id
),
ranked as (
    select
        *,
        row_number() over (
            partition by user_key
            order by occurred_at desc, message_id desc
        ) as recency_rank
    from stitched
),
final as (
    select
        user_key,
        has_analytics_consent,
        occurred_at as consent_stated_at,
        message_id as consent_message_id
    from ranked
    where recency_rank = 1
)
select * from final;

-- int_user_email_fatigue
create or replace table floor.int_user_email_fatigue as
with
events as (
    select * from floor.int_events_stitched
    where event_type in ('email_delivered', 'email_open')
),
deliveries as (
    -- one row per delivered email (campaign), at its first delivery
    select
        user_key,
        coalesce(campaign_id, message_id) as email_key,
        min(occurred_at) as delivered_at
    from events
    where event_type = 'email_delivered'
    group by user_key, coalesce(campaign_id, message_id)
),
opens as (
    select
        user_key,
        coalesce(campaign_id, message_id) as email_key,
        min(occurred_at) as first_opened_at
    from events
    where event_type = 'email_open'
    group by user_key, coalesce(campaign_id, message_id)
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
        cast(sum(case when first_opened_at is not null then 1 else 0 end) as bigint)
            as recent_deliveries_opened,
        min(delivered_at) as recent_deliveries_since
    from recent_deliveries
    where recency_rank <= 5
    group by user_key
)
select * from final;

-- int_user_product_interest
create or replace table floor.int_user_product_interest as
with
events as (
    select * from floor.int_events_stitched
    where
        event_type = 'product_view'
        and product_id is not null
        and occurred_at > 
    (cast('__AS_OF__' as timestamp) + cast(-48 as bigint) * interval 1 hour)
),
views_per_product as (
    select
        user_key,
        product_id,
        count(*) as product_views,
        max(occurred_at) as last_viewed_at
    from events
    group by user_key, product_id
),
ranked as (
    -- the most viewed product; ties: the most recently viewed, then the lowest product_id
    select
        *,
        row_number() over (
            partition by user_key
            order by product_views desc, last_viewed_at desc, product_id asc
        ) as interest_rank
    from views_per_product
),
final as (
    select
        user_key,
        product_id as top_product_id_intent_window,
        product_views as top_product_views_intent_window,
        last_viewed_at as top_product_last_viewed_at
    from ranked
    where interest_rank = 1
)
select * from final;

-- int_user_rfm
create or replace table floor.int_user_rfm as
with
activity as (
    select * from floor.int_user_activity
),
consent as (
    select * from floor.int_user_consent
),
customers as (
    select
        activity.user_key,
        cast(floor(
            ((epoch_us(cast('__AS_OF__' as timestamp)) - epoch_us(activity.last_order_at)) / 1000000.0) / 86400
        ) as integer) as recency_days,
        activity.orders_rfm_window as frequency,
        cast(activity.revenue_rfm_window as double) as monetary,
        activity.last_order_at
    from activity
    left join consent
        on activity.user_key = consent.user_key
    where
        activity.orders_rfm_window >= 1
        and coalesce(consent.has_analytics_consent, true)
),
ranked as (
    select
        *,
        rank() over (order by recency_days desc) as recency_rank,
        rank() over (order by frequency) as frequency_rank,
        rank() over (order by monetary) as monetary_rank,
        count(*) over () as rfm_customers
    from customers
),
scored as (
    select
        user_key,
        recency_days,
        frequency,
        monetary,
        last_order_at,
        rfm_customers,
        cast(1 + floor(5.0 * (recency_rank - 1) / rfm_customers) as integer) as recency_score,
        cast(1 + floor(5.0 * (frequency_rank - 1) / rfm_customers) as integer) as frequency_score,
        cast(1 + floor(5.0 * (monetary_rank - 1) / rfm_customers) as integer) as monetary_score
    from ranked
),
final as (
    select
        user_key,
        recency_days,
        frequency,
        monetary,
        last_order_at,
        recency_score,
        frequency_score,
        monetary_score,
        cast(recency_score as TEXT) || cast(frequency_score as TEXT) || cast(monetary_score as TEXT) as rfm_cell,
        rfm_customers
    from scored
)
select * from final;

-- int_user_send_time
create or replace table floor.int_user_send_time as
with
events as (
    select * from floor.int_events_stitched
    where event_type in ('email_open', 'email_click')
),
session_starts as (
    select * from floor.int_sessionized_events
    where is_session_start
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
        hour(occurred_at) as engagement_hour,
        isodow(occurred_at) as engagement_weekday
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
        by_hour.total_signals as engagement_signals
    from by_hour
    inner join by_weekday
        on
            by_hour.user_key = by_weekday.user_key
            and by_weekday.weekday_rank = 1
    where by_hour.hour_rank = 1
)
select * from final;

-- fct_sessions
create or replace table floor.fct_sessions as
with
events as (
    select * from floor.int_sessionized_events
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
            case when event_type in ('click', 'video_play', 'search', 'product_view', 'add_to_cart', 'remove_from_cart', 'checkout_started', 'purchase', 'signup', 'email_click') then 1 else 0 end
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
        ((epoch_us(session_totals.ended_at) - epoch_us(session_totals.started_at)) / 1000000.0)
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
        case
        when lower(session_totals.utm_medium) = 'email' then 'email'
        when lower(session_totals.utm_medium) in ('cpc', 'ppc', 'paid_search', 'paidsearch') then 'paid_search'
        when lower(session_totals.utm_medium) in ('social', 'paid_social', 'social_paid') then 'social'
        when
            session_totals.utm_medium is not null or session_totals.utm_source is not null or session_totals.utm_campaign is not null
            then 'campaign'
        when
            lower(session_totals.referrer) like '%google.%'
            or lower(session_totals.referrer) like '%bing.%'
            or lower(session_totals.referrer) like '%duckduckgo.%'
            or lower(session_totals.referrer) like '%yahoo.%'
            or lower(session_totals.referrer) like '%ecosia.%'
            then 'organic_search'
        when
            lower(session_totals.referrer) like '%facebook.%'
            or lower(session_totals.referrer) like '%instagram.%'
            or lower(session_totals.referrer) like '%linkedin.%'
            or lower(session_totals.referrer) like '%twitter.%'
            or lower(session_totals.referrer) like '%//t.co/%'
            or lower(session_totals.referrer) like '%tiktok.%'
            then 'social'
        when session_totals.referrer is not null and trim(session_totals.referrer) <> '' then 'referral'
        else 'direct'
    end as acquisition_channel,
        session_totals.device_type,
        session_totals.screen_or_page_views <= 1 and session_totals.interactions = 0 as is_bounce,
        session_totals.add_to_cart_flag = 1 as has_add_to_cart,
        session_totals.purchase_flag = 1 as has_purchase,
        cast(session_totals.revenue as double) as revenue
    from session_totals
    left join landing_and_exit
        on session_totals.session_id = landing_and_exit.session_id
)
select * from final;

-- int_user_lifecycle_history
create or replace table floor.int_user_lifecycle_history as
with
events as (
    select * from floor.int_events_stitched
    where event_type = 'purchase'
),
activity as (
    select * from floor.int_user_activity
),
orders as (
    -- an order counts once, at its first purchase event
    select
        user_key,
        coalesce(order_id, message_id) as order_key,
        min(occurred_at) as ordered_at
    from events
    group by user_key, coalesce(order_id, message_id)
),
orders_with_next as (
    select
        user_key,
        ordered_at,
        lead(ordered_at) over (partition by user_key order by ordered_at, order_key) as next_ordered_at,
    (ordered_at + cast(60 as bigint) * interval 1 day) as lapses_at
    from orders
),
milestones as (
    select
        user_key,
        first_seen_at as milestone_at,
        0 as is_known,
        0 as has_cart_intent,
        0 as new_orders,
        0 as is_lapse
    from activity
    union all
    -- known from the first message naming the user (or from the start, when that message
    -- did not reach behavior but the identity map still names the user)
    select
        user_key,
        coalesce(first_identified_at, first_seen_at) as milestone_at,
        1 as is_known,
        0 as has_cart_intent,
        0 as new_orders,
        0 as is_lapse
    from activity
    where user_id is not null
    union all
    select
        user_key,
        first_cart_intent_at as milestone_at,
        0 as is_known,
        1 as has_cart_intent,
        0 as new_orders,
        0 as is_lapse
    from activity
    where first_cart_intent_at is not null
    union all
    select
        user_key,
        ordered_at as milestone_at,
        0 as is_known,
        0 as has_cart_intent,
        1 as new_orders,
        0 as is_lapse
    from orders_with_next
    union all
    -- the customer lapses unless the next order comes at or before the lapse instant
    select
        user_key,
        lapses_at as milestone_at,
        0 as is_known,
        0 as has_cart_intent,
        0 as new_orders,
        1 as is_lapse
    from orders_with_next
    where
        (next_ordered_at is null or next_ordered_at > lapses_at)
        and lapses_at < cast('__AS_OF__' as timestamp)
),
per_instant as (
    select
        user_key,
        milestone_at,
        max(is_known) as is_known,
        max(has_cart_intent) as has_cart_intent,
        sum(new_orders) as new_orders,
        max(case when new_orders > 0 then milestone_at end) as ordered_at,
        max(is_lapse) as is_lapse
    from milestones
    group by user_key, milestone_at
),
cumulative as (
    select
        user_key,
        milestone_at,
        is_lapse,
        max(is_known) over (
            partition by user_key order by milestone_at rows between unbounded preceding and current row
        ) as is_known,
        max(has_cart_intent) over (
            partition by user_key order by milestone_at rows between unbounded preceding and current row
        ) as has_cart_intent,
        sum(new_orders) over (
            partition by user_key order by milestone_at rows between unbounded preceding and current row
        ) as orders,
        max(ordered_at) over (
            partition by user_key order by milestone_at rows between unbounded preceding and current row
        ) as last_ordered_at
    from per_instant
),
staged as (
    select
        user_key,
        milestone_at,
        case
        when orders >= 1 and (is_lapse = 1 or ((epoch_us(milestone_at) - epoch_us(last_ordered_at)) / 1000000.0) > 5184000) then 'lapsed'
        when orders >= 2 then 'repeat_customer'
        when orders >= 1 then 'customer'
        when is_known = 1 and has_cart_intent = 1 then 'lead'
        when is_known = 1 then 'prospect'
        else 'visitor'
    end as lifecycle_stage
    from cumulative
),
with_previous as (
    select
        *,
        lag(lifecycle_stage) over (partition by user_key order by milestone_at) as previous_stage
    from staged
),
changes as (
    select
        user_key,
        lifecycle_stage,
        previous_stage,
        milestone_at as entered_at
    from with_previous
    where previous_stage is null or previous_stage <> lifecycle_stage
),
final as (
    select
        user_key,
        lifecycle_stage,
        previous_stage,
        entered_at,
        lead(entered_at) over (partition by user_key order by entered_at) as exited_at,
        lead(entered_at) over (partition by user_key order by entered_at) is null as is_current
    from changes
)
select * from final;

-- dim_users
create or replace table floor.dim_users as
with
activity as (
    select * from floor.int_user_activity
),
product_interest as (
    select * from floor.int_user_product_interest
),
email_fatigue as (
    select * from floor.int_user_email_fatigue
),
send_time as (
    select * from floor.int_user_send_time
),
rfm as (
    select * from floor.int_user_rfm
),
sessions as (
    select * from floor.fct_sessions
),
consent as (
    select * from floor.int_user_consent
),
cart_add_events as (
    select * from floor.int_events_stitched
    where event_type = 'add_to_cart'
),
as_of as (
    select
        cast('__AS_OF__' as timestamp) as as_of,
    (cast('__AS_OF__' as timestamp) + cast(-30 as bigint) * interval 1 day) as window_30d_start
),
session_features as (
    select
        sessions.user_key,
        count(*) as sessions,
        count(case when sessions.started_at > as_of.window_30d_start then 1 end) as sessions_30d,
        avg(sessions.duration_seconds) as avg_session_duration_seconds,
        count(case when sessions.channel in ('browser', 'web') then 1 end) as web_sessions,
        count(case when sessions.channel = 'mobile' then 1 end) as app_sessions,
        count(case when sessions.acquisition_channel = 'email' then 1 end) as email_sessions,
        count(distinct sessions.device_id) as devices,
        count(distinct sessions.device_type) as device_types
    from sessions
    cross join as_of
    group by sessions.user_key
),
device_type_ranked as (
    -- the device type with the most sessions; ties go to the alphabetically first
    select
        user_key,
        device_type,
        row_number() over (partition by user_key order by count(*) desc, device_type) as device_type_rank
    from sessions
    where device_type is not null
    group by user_key, device_type
),
acquisition_ranked as (
    select
        user_key,
        acquisition_channel,
        row_number() over (
            partition by user_key order by count(*) desc, acquisition_channel
        ) as acquisition_rank
    from sessions
    group by user_key, acquisition_channel
),
last_cart_add_ranked as (
    select
        user_key,
        product_id,
        price,
        row_number() over (
            partition by user_key order by occurred_at desc, message_id desc
        ) as recency_rank
    from cart_add_events
),
last_cart_add as (
    select
        user_key,
        product_id as last_cart_product_id,
        price as last_cart_value
    from last_cart_add_ranked
    where recency_rank = 1
),
joined as (
    select
        activity.*,
        as_of.as_of,
        coalesce(session_features.sessions, 0) as sessions,
        coalesce(session_features.sessions_30d, 0) as sessions_30d,
        session_features.avg_session_duration_seconds,
        coalesce(session_features.web_sessions, 0) as web_sessions,
        coalesce(session_features.app_sessions, 0) as app_sessions,
        coalesce(session_features.email_sessions, 0) as email_sessions,
        coalesce(session_features.devices, 0) as devices,
        coalesce(session_features.device_types, 0) as device_types,
        device_type_ranked.device_type as primary_device_type,
        acquisition_ranked.acquisition_channel as primary_acquisition_channel,
        last_cart_add.last_cart_product_id,
        last_cart_add.last_cart_value,
        product_interest.top_product_id_intent_window,
        product_interest.top_product_views_intent_window,
        email_fatigue.recent_deliveries,
        email_fatigue.recent_deliveries_opened,
        send_time.preferred_engagement_hour_utc,
        send_time.preferred_engagement_weekday,
        send_time.engagement_signals,
        rfm.recency_days as rfm_recency_days,
        rfm.frequency as rfm_frequency,
        rfm.monetary as rfm_monetary,
        rfm.recency_score,
        rfm.frequency_score,
        rfm.monetary_score,
        rfm.rfm_cell,
        consent.has_analytics_consent as stated_analytics_consent,
        consent.consent_stated_at,
        ((epoch_us(as_of.as_of) - epoch_us(activity.last_order_at)) / 1000000.0) as seconds_since_last_order
    from activity
    cross join as_of
    left join session_features
        on activity.user_key = session_features.user_key
    left join device_type_ranked
        on
            activity.user_key = device_type_ranked.user_key
            and device_type_ranked.device_type_rank = 1
    left join acquisition_ranked
        on
            activity.user_key = acquisition_ranked.user_key
            and acquisition_ranked.acquisition_rank = 1
    left join last_cart_add
        on activity.user_key = last_cart_add.user_key
    left join product_interest
        on activity.user_key = product_interest.user_key
    left join email_fatigue
        on activity.user_key = email_fatigue.user_key
    left join send_time
        on activity.user_key = send_time.user_key
    left join rfm
        on activity.user_key = rfm.user_key
    left join consent
        on activity.user_key = consent.user_key
),
final as (
    select
        user_key,
        user_id,
        case
        when orders >= 1 and coalesce(seconds_since_last_order > 5184000, false) then 'lapsed'
        when orders >= 2 then 'repeat_customer'
        when orders >= 1 then 'customer'
        when user_id is not null and first_cart_intent_at is not null then 'lead'
        when user_id is not null then 'prospect'
        else 'visitor'
    end as lifecycle_stage,
        cast(round(
        100.0 * engagement_points_window / (engagement_points_window + 50), 0
    ) as integer) as engagement_score,
        -- activity
        first_seen_at,
        last_seen_at,
        first_identified_at,
        active_days,
        sessions,
        cast(avg_session_duration_seconds as double) as avg_session_duration_seconds,
        events,
        page_view_count,
        screen_view_count,
        click_count,
        video_play_count,
        search_count,
        product_view_count,
        add_to_cart_count,
        remove_from_cart_count,
        checkout_started_count,
        purchase_count,
        signup_count,
        email_delivered_count,
        email_open_count,
        email_click_count,
        experiment_exposure_count,
        consent_updated_count,
        identify_count,
        alias_count,
        other_count,
        sessions_30d,
        active_days_30d,
        -- browsing
        product_view_count as product_views,
        distinct_products_viewed,
        categories_viewed,
        high_end_product_views,
        cast(high_end_product_views as double) / nullif(product_view_count, 0) as high_end_view_share,
        cast(avg_viewed_price as double) as avg_viewed_price,
        case
        when avg_viewed_price is null then null
        when avg_viewed_price >= 150 then 'high_end'
        when avg_viewed_price >= 50 then 'mid'
        else 'budget'
    end as browsing_price_tier,
        high_end_product_views >= 3 as has_high_end_browsing,
        last_product_view_at,
        product_views_browse_window,
        cart_adds_browse_window,
        pricing_views_intent_window,
        last_pricing_view_at,
        top_product_id_intent_window,
        coalesce(top_product_views_intent_window, 0) as top_product_views_intent_window,
        -- buying
        add_to_cart_count as cart_adds,
        first_cart_intent_at,
        orders,
        cast(revenue as double) as revenue,
        cast(revenue as double) / nullif(orders, 0) as average_order_value,
        first_order_at,
        last_order_at,
        cast(floor(seconds_since_last_order / 86400) as integer) as days_since_last_order,
        cast(revenue_365d as double) as revenue_365d,
        orders_365d,
        last_cart_add_at,
        last_cart_product_id,
        cast(last_cart_value as double) as last_cart_value,
        coalesce(last_order_at >= last_cart_add_at, false) as has_purchase_since_last_cart_add,
        -- rfm
        rfm_recency_days,
        rfm_frequency,
        cast(rfm_monetary as double) as rfm_monetary,
        recency_score,
        frequency_score,
        monetary_score,
        rfm_cell,
        -- email
        emails_delivered,
        emails_opened,
        emails_clicked,
        cast(emails_opened as double) / nullif(emails_delivered, 0) as email_open_rate,
        cast(emails_clicked as double) / nullif(emails_delivered, 0) as email_click_through_rate,
        emails_opened_open_window,
        last_email_delivered_at,
        last_email_engagement_at,
        coalesce(recent_deliveries, 0) as recent_deliveries,
        coalesce(recent_deliveries_opened, 0) as recent_deliveries_opened,
        -- send-time optimisation
        preferred_engagement_hour_utc,
        preferred_engagement_weekday,
        coalesce(engagement_signals, 0) as engagement_signals,
        -- reach and status
        web_sessions,
        app_sessions,
        email_sessions,
        primary_acquisition_channel,
        devices,
        device_types,
        primary_device_type,
        emails_delivered > 0 as is_email_reachable,
        -- engagement
        engagement_points_window,
        engagement_points_recent,
        engagement_points_baseline,
        coalesce(stated_analytics_consent, true) as has_analytics_consent,
        consent_stated_at,
        as_of
    from joined
)
select * from final;

-- fct_campaign_engagement
create or replace table floor.fct_campaign_engagement as
with
events as (
    select * from floor.int_events_stitched
    where
        event_type in ('email_delivered', 'email_open', 'email_click')
        and campaign_id is not null
),
sessions as (
    select * from floor.fct_sessions
    where utm_campaign is not null
),
email_results as (
    -- the email channel: what the email service reported, counted per user
    select
        campaign_id,
        'email' as channel,
        max(campaign_name) as campaign_name,
        min(case when event_type = 'email_delivered' then occurred_at end) as first_delivered_at,
        count(distinct case when event_type = 'email_delivered' then user_key end) as delivered,
        count(distinct case when event_type = 'email_open' then user_key end) as unique_opens,
        sum(case when event_type = 'email_click' then 1 else 0 end) as clicks,
        count(distinct case when event_type = 'email_click' then user_key end) as unique_clicks
    from events
    group by campaign_id
),
session_results as (
    -- sessions whose first event carries utm_campaign = the campaign (last-click)
    select
        utm_campaign as campaign_id,
        acquisition_channel as channel,
        count(*) as sessions,
        count(distinct user_key) as session_users,
        sum(case when has_purchase then 1 else 0 end) as conversions,
        sum(revenue) as revenue
    from sessions
    group by utm_campaign, acquisition_channel
),
final as (
    select
        coalesce(email_results.campaign_id, session_results.campaign_id) as campaign_id,
        email_results.campaign_name,
        coalesce(email_results.channel, session_results.channel) as channel,
        email_results.first_delivered_at,
        coalesce(email_results.delivered, 0) as delivered,
        coalesce(email_results.unique_opens, 0) as unique_opens,
        cast(coalesce(email_results.clicks, 0) as bigint) as clicks,
        coalesce(email_results.unique_clicks, 0) as unique_clicks,
        cast(email_results.unique_opens as double) / nullif(email_results.delivered, 0) as open_rate,
        cast(email_results.unique_clicks as double) / nullif(email_results.delivered, 0) as click_through_rate,
        cast(email_results.unique_clicks as double) / nullif(email_results.unique_opens, 0) as click_to_open_rate,
        coalesce(session_results.sessions, 0) as sessions,
        coalesce(session_results.session_users, 0) as session_users,
        cast(coalesce(session_results.conversions, 0) as bigint) as conversions,
        cast(coalesce(session_results.revenue, 0) as double) as revenue,
        cast(session_results.conversions as double) / nullif(session_results.sessions, 0)
            as session_conversion_rate
    from email_results
    full outer join session_results
        on
            email_results.campaign_id = session_results.campaign_id
            and email_results.channel = session_results.channel
)
select * from final;

-- fct_experiment_results
create or replace table floor.fct_experiment_results as
with
exposures as (
    select * from floor.int_events_stitched
    where
        event_type = 'experiment_exposure'
        and experiment_id is not null
        and variation is not null
),
purchases as (
    select * from floor.int_events_stitched
    where event_type = 'purchase'
),
exposures_ranked as (
    select
        user_key,
        experiment_id,
        variation,
        occurred_at,
        row_number() over (
            partition by user_key, experiment_id order by occurred_at, message_id
        ) as exposure_rank
    from exposures
),
first_exposures as (
    -- a user counts once, in the variant of their first exposure
    select
        user_key,
        experiment_id,
        variation as variant,
        occurred_at as first_exposed_at
    from exposures_ranked
    where exposure_rank = 1
),
user_outcomes as (
    select
        first_exposures.experiment_id,
        first_exposures.variant,
        first_exposures.user_key,
        count(distinct coalesce(purchases.order_id, purchases.message_id)) as orders_after_exposure,
        coalesce(sum(purchases.revenue), 0) as revenue_after_exposure
    from first_exposures
    left join purchases
        on
            first_exposures.user_key = purchases.user_key
            and first_exposures.first_exposed_at <= purchases.occurred_at
    group by first_exposures.experiment_id, first_exposures.variant, first_exposures.user_key
),
variants as (
    select
        experiment_id,
        variant,
        count(*) as exposed_users,
        cast(sum(case when orders_after_exposure > 0 then 1 else 0 end) as bigint)
            as converted_users,
        cast(sum(orders_after_exposure) as bigint) as orders_after_exposure,
        cast(sum(revenue_after_exposure) as double) as revenue_after_exposure
    from user_outcomes
    group by experiment_id, variant
),
with_totals as (
    select
        *,
        cast(converted_users as double) / exposed_users as conversion_rate,
        sum(exposed_users) over (partition by experiment_id) as experiment_users,
        count(*) over (partition by experiment_id) as experiment_variants
    from variants
),
compared as (
    select
        with_totals.*,
        control.exposed_users as control_exposed_users,
        control.converted_users as control_converted_users,
        control.conversion_rate as control_conversion_rate,
        cast(with_totals.converted_users + control.converted_users as double)
        / (with_totals.exposed_users + control.exposed_users) as pooled_rate
    from with_totals
    left join with_totals as control
        on
            with_totals.experiment_id = control.experiment_id
            and control.variant = 'control'
),
tested as (
    select
        *,
        conversion_rate - control_conversion_rate as rate_difference,
        -- two-proportion z-test with the pooled rate
        (conversion_rate - control_conversion_rate) / nullif(sqrt(
            pooled_rate * (1 - pooled_rate)
            * (1.0 / exposed_users + 1.0 / control_exposed_users)
        ), 0) as z_score,
        -- unpooled standard error of the difference, for the confidence interval
        sqrt(
            conversion_rate * (1 - conversion_rate) / exposed_users
            + control_conversion_rate * (1 - control_conversion_rate) / control_exposed_users
        ) as difference_standard_error,
        -- sample-ratio mismatch: the variant's share against an equal split
        (exposed_users - cast(experiment_users as double) / experiment_variants) / nullif(sqrt(
            experiment_users * (1.0 / experiment_variants) * (1 - 1.0 / experiment_variants)
        ), 0) as srm_z_score
    from compared
),
bounded as (
    select
        *,
        rate_difference - 1.959964 * difference_standard_error as ci_lower,
        rate_difference + 1.959964 * difference_standard_error as ci_upper,
        (2.0 * (1.0 - (0.5 * (1.0 + (case when (abs(z_score)) < 0 then -1.0 else 1.0 end) * (
        1.0 - (
            ((((1.061405429 * (1.0 / (1.0 + 0.3275911 * (abs(abs(z_score)) / 1.4142135623730951))) - 1.453152027) * (1.0 / (1.0 + 0.3275911 * (abs(abs(z_score)) / 1.4142135623730951))) + 1.421413741) * (1.0 / (1.0 + 0.3275911 * (abs(abs(z_score)) / 1.4142135623730951)))
                - 0.284496736) * (1.0 / (1.0 + 0.3275911 * (abs(abs(z_score)) / 1.4142135623730951))) + 0.254829592) * (1.0 / (1.0 + 0.3275911 * (abs(abs(z_score)) / 1.4142135623730951)))
        ) * exp(-1.0 * (abs(abs(z_score)) / 1.4142135623730951) * (abs(abs(z_score)) / 1.4142135623730951))
    ))))) as test_p_value
    from tested
),
final as (
    select
        experiment_id,
        variant,
        variant = 'control' as is_control,
        exposed_users,
        converted_users,
        orders_after_exposure,
        revenue_after_exposure,
        conversion_rate,
        control_conversion_rate,
        case when variant <> 'control' then rate_difference end as rate_difference,
        case
            when variant <> 'control' then rate_difference / nullif(control_conversion_rate, 0)
        end as lift,
        case when variant <> 'control' then z_score end as z_score,
        case when variant <> 'control' then test_p_value end as p_value,
        case when variant <> 'control' then ci_lower end as difference_ci_lower,
        case when variant <> 'control' then ci_upper end as difference_ci_upper,
        case when variant <> 'control' then ci_lower / nullif(control_conversion_rate, 0) end as lift_ci_lower,
        case when variant <> 'control' then ci_upper / nullif(control_conversion_rate, 0) end as lift_ci_upper,
        coalesce(
            variant <> 'control' and test_p_value < 0.05,
            false
        ) as is_significant,
        experiment_users,
        cast(exposed_users as double) / experiment_users as exposure_share,
        srm_z_score,
        (2.0 * (1.0 - (0.5 * (1.0 + (case when (abs(srm_z_score)) < 0 then -1.0 else 1.0 end) * (
        1.0 - (
            ((((1.061405429 * (1.0 / (1.0 + 0.3275911 * (abs(abs(srm_z_score)) / 1.4142135623730951))) - 1.453152027) * (1.0 / (1.0 + 0.3275911 * (abs(abs(srm_z_score)) / 1.4142135623730951))) + 1.421413741) * (1.0 / (1.0 + 0.3275911 * (abs(abs(srm_z_score)) / 1.4142135623730951)))
                - 0.284496736) * (1.0 / (1.0 + 0.3275911 * (abs(abs(srm_z_score)) / 1.4142135623730951))) + 0.254829592) * (1.0 / (1.0 + 0.3275911 * (abs(abs(srm_z_score)) / 1.4142135623730951)))
        ) * exp(-1.0 * (abs(abs(srm_z_score)) / 1.4142135623730951) * (abs(abs(srm_z_score)) / 1.4142135623730951))
    ))))) as srm_p_value,
        coalesce((2.0 * (1.0 - (0.5 * (1.0 + (case when (abs(srm_z_score)) < 0 then -1.0 else 1.0 end) * (
        1.0 - (
            ((((1.061405429 * (1.0 / (1.0 + 0.3275911 * (abs(abs(srm_z_score)) / 1.4142135623730951))) - 1.453152027) * (1.0 / (1.0 + 0.3275911 * (abs(abs(srm_z_score)) / 1.4142135623730951))) + 1.421413741) * (1.0 / (1.0 + 0.3275911 * (abs(abs(srm_z_score)) / 1.4142135623730951)))
                - 0.284496736) * (1.0 / (1.0 + 0.3275911 * (abs(abs(srm_z_score)) / 1.4142135623730951))) + 0.254829592) * (1.0 / (1.0 + 0.3275911 * (abs(abs(srm_z_score)) / 1.4142135623730951)))
        ) * exp(-1.0 * (abs(abs(srm_z_score)) / 1.4142135623730951) * (abs(abs(srm_z_score)) / 1.4142135623730951))
    ))))) < 0.001, false)
            as has_sample_ratio_mismatch
    from bounded
)
select * from final;

-- seg_at_risk_churn
create or replace table floor.seg_at_risk_churn as
with
users as (
    select * from floor.dim_users
),
rates as (
    select
        user_key,
        user_id,
        engagement_points_recent,
        engagement_points_baseline,
        cast(engagement_points_recent as double) / 14 as recent_points_per_day,
        cast(engagement_points_baseline as double) / 28 as baseline_points_per_day,
        last_seen_at,
        has_analytics_consent
    from users
),
final as (
    select
        user_key,
        user_id,
        engagement_points_recent,
        engagement_points_baseline,
        recent_points_per_day,
        baseline_points_per_day,
        recent_points_per_day / baseline_points_per_day as activity_ratio,
        last_seen_at
    from rates
    where
        has_analytics_consent
        and engagement_points_baseline >= 20
        and recent_points_per_day < 0.25 * baseline_points_per_day
)
select * from final;

-- seg_browse_abandoners
create or replace table floor.seg_browse_abandoners as
with
users as (
    select * from floor.dim_users
),
final as (
    select
        user_key,
        user_id,
        product_views_browse_window,
        cart_adds_browse_window,
        last_product_view_at,
        distinct_products_viewed,
        browsing_price_tier
    from users
    where
        has_analytics_consent
        and product_views_browse_window >= 2
        and cart_adds_browse_window = 0
)
select * from final;

-- seg_cart_abandoners
create or replace table floor.seg_cart_abandoners as
with
users as (
    select * from floor.dim_users
),
evaluated as (
    select
        user_key,
        user_id,
        last_cart_add_at,
        ((epoch_us(as_of) - epoch_us(last_cart_add_at)) / 1000000.0) as seconds_since_cart_add,
        last_cart_product_id as cart_product_id,
        last_cart_value as cart_value,
        has_purchase_since_last_cart_add,
        has_analytics_consent,
        as_of
    from users
    where last_cart_add_at is not null
),
final as (
    select
        user_key,
        user_id,
        last_cart_add_at,
        seconds_since_cart_add / 3600.0 as hours_since_cart_add,
        cart_product_id,
        cart_value
    from evaluated
    where
        has_analytics_consent
        -- the most recent cart add is at most max_age days old ...
        and last_cart_add_at >= 
    (as_of + cast(-30 as bigint) * interval 1 day)
        -- ... and strictly more than window_hours before as_of ...
        and seconds_since_cart_add > 24 * 3600
        -- ... with no purchase at or after it
        and not has_purchase_since_last_cart_add
)
select * from final;

-- seg_customers
create or replace table floor.seg_customers as
with
users as (
    select * from floor.dim_users
),
final as (
    select
        user_key,
        user_id,
        lifecycle_stage,
        orders,
        revenue,
        last_order_at,
        days_since_last_order
    from users
    where
        has_analytics_consent
        and lifecycle_stage in ('customer', 'repeat_customer')
)
select * from final;

-- seg_email_fatigued
create or replace table floor.seg_email_fatigued as
with
users as (
    select * from floor.dim_users
),
final as (
    select
        user_key,
        user_id,
        recent_deliveries,
        recent_deliveries_opened,
        emails_delivered,
        last_email_delivered_at,
        last_email_engagement_at
    from users
    where
        has_analytics_consent
        and recent_deliveries >= 5
        and recent_deliveries_opened = 0
)
select * from final;

-- seg_engaged_non_converters
create or replace table floor.seg_engaged_non_converters as
with
users as (
    select * from floor.dim_users
),
final as (
    select
        user_key,
        user_id,
        emails_opened_open_window,
        last_email_engagement_at,
        last_order_at,
        days_since_last_order
    from users
    where
        has_analytics_consent
        and emails_opened_open_window >= 3
        -- no purchase in the last N days: the last order (if any) is at least N days old
        and (
            last_order_at is null
            or last_order_at <= 
    (as_of + cast(-30 as bigint) * interval 1 day)
        )
)
select * from final;

-- seg_high_intent
create or replace table floor.seg_high_intent as
with
users as (
    select * from floor.dim_users
),
final as (
    select
        user_key,
        user_id,
        pricing_views_intent_window,
        top_product_id_intent_window,
        top_product_views_intent_window,
        last_pricing_view_at,
        last_product_view_at
    from users
    where
        has_analytics_consent
        and (
            pricing_views_intent_window >= 3
            or top_product_views_intent_window >= 3
        )
)
select * from final;

-- seg_high_value_customers
create or replace table floor.seg_high_value_customers as
with
users as (
    select * from floor.dim_users
),
final as (
    select
        user_key,
        user_id,
        revenue_365d,
        orders_365d,
        last_order_at
    from users
    where
        has_analytics_consent
        and revenue_365d >= 500
)
select * from final;

-- seg_highly_engaged
create or replace table floor.seg_highly_engaged as
with
users as (
    select * from floor.dim_users
),
final as (
    select
        user_key,
        user_id,
        sessions_30d,
        active_days_30d,
        last_seen_at
    from users
    where
        has_analytics_consent
        and sessions_30d >= 8
        and active_days_30d >= 4
)
select * from final;

-- seg_lapsed_customers
create or replace table floor.seg_lapsed_customers as
with
users as (
    select * from floor.dim_users
),
final as (
    select
        user_key,
        user_id,
        lifecycle_stage,
        orders,
        revenue,
        last_order_at,
        days_since_last_order
    from users
    where
        has_analytics_consent
        and lifecycle_stage = 'lapsed'
)
select * from final;

-- seg_leads
create or replace table floor.seg_leads as
with
users as (
    select * from floor.dim_users
),
final as (
    select
        user_key,
        user_id,
        lifecycle_stage,
        first_cart_intent_at,
        cart_adds,
        checkout_started_count,
        last_seen_at
    from users
    where
        has_analytics_consent
        and lifecycle_stage = 'lead'
)
select * from final;

-- seg_new_prospects
create or replace table floor.seg_new_prospects as
with
users as (
    select * from floor.dim_users
),
final as (
    select
        user_key,
        user_id,
        lifecycle_stage,
        first_seen_at,
        first_identified_at,
        product_views,
        engagement_score
    from users
    where
        has_analytics_consent
        and lifecycle_stage = 'prospect'
        and first_seen_at > 
    (as_of + cast(-30 as bigint) * interval 1 day)
)
select * from final;

-- seg_rfm_at_risk
create or replace table floor.seg_rfm_at_risk as
with
users as (
    select * from floor.dim_users
),
final as (
    select
        user_key,
        user_id,
        recency_score,
        frequency_score,
        monetary_score,
        rfm_recency_days,
        rfm_frequency,
        rfm_monetary,
        last_order_at
    from users
    where
        has_analytics_consent
        and recency_score <= 2
        and frequency_score >= 3
)
select * from final;

-- seg_rfm_champions
create or replace table floor.seg_rfm_champions as
with
users as (
    select * from floor.dim_users
),
final as (
    select
        user_key,
        user_id,
        recency_score,
        frequency_score,
        monetary_score,
        rfm_recency_days,
        rfm_frequency,
        rfm_monetary,
        last_order_at
    from users
    where
        has_analytics_consent
        and recency_score >= 4
        and frequency_score >= 4
)
select * from final;

-- seg_rfm_hibernating
create or replace table floor.seg_rfm_hibernating as
with
users as (
    select * from floor.dim_users
),
final as (
    select
        user_key,
        user_id,
        recency_score,
        frequency_score,
        monetary_score,
        rfm_recency_days,
        rfm_frequency,
        rfm_monetary,
        last_order_at
    from users
    where
        has_analytics_consent
        and recency_score <= 2
        and frequency_score <= 2
)
select * from final;

-- seg_rfm_loyal
create or replace table floor.seg_rfm_loyal as
with
users as (
    select * from floor.dim_users
),
final as (
    select
        user_key,
        user_id,
        recency_score,
        frequency_score,
        monetary_score,
        rfm_recency_days,
        rfm_frequency,
        rfm_monetary,
        last_order_at
    from users
    where
        has_analytics_consent
        and recency_score >= 3
        and frequency_score >= 3
        -- champions are the better cell of the grid
        and not (
            recency_score >= 4
            and frequency_score >= 4
        )
)
select * from final;

-- segment_membership_history
create or replace table floor.segment_membership_history as
-- The segments are found in the graph (meta.segment) and their rules rendered inline,
-- so this model reads what they read. Every segment model reads dim_users.
-- depends_on: floor.dim_users
with
current_members as (
            select distinct
                member.user_key,
                'seg_at_risk_churn' as segment
            from (
                with
users as (
    select * from floor.dim_users
),
rates as (
    select
        user_key,
        user_id,
        engagement_points_recent,
        engagement_points_baseline,
        cast(engagement_points_recent as double) / 14 as recent_points_per_day,
        cast(engagement_points_baseline as double) / 28 as baseline_points_per_day,
        last_seen_at,
        has_analytics_consent
    from users
),
final as (
    select
        user_key,
        user_id,
        engagement_points_recent,
        engagement_points_baseline,
        recent_points_per_day,
        baseline_points_per_day,
        recent_points_per_day / baseline_points_per_day as activity_ratio,
        last_seen_at
    from rates
    where
        has_analytics_consent
        and engagement_points_baseline >= 20
        and recent_points_per_day < 0.25 * baseline_points_per_day
)
select * from final
            ) as member
            union all
            select distinct
                member.user_key,
                'seg_browse_abandoners' as segment
            from (
                with
users as (
    select * from floor.dim_users
),
final as (
    select
        user_key,
        user_id,
        product_views_browse_window,
        cart_adds_browse_window,
        last_product_view_at,
        distinct_products_viewed,
        browsing_price_tier
    from users
    where
        has_analytics_consent
        and product_views_browse_window >= 2
        and cart_adds_browse_window = 0
)
select * from final
            ) as member
            union all
            select distinct
                member.user_key,
                'seg_cart_abandoners' as segment
            from (
                with
users as (
    select * from floor.dim_users
),
evaluated as (
    select
        user_key,
        user_id,
        last_cart_add_at,
        ((epoch_us(as_of) - epoch_us(last_cart_add_at)) / 1000000.0) as seconds_since_cart_add,
        last_cart_product_id as cart_product_id,
        last_cart_value as cart_value,
        has_purchase_since_last_cart_add,
        has_analytics_consent,
        as_of
    from users
    where last_cart_add_at is not null
),
final as (
    select
        user_key,
        user_id,
        last_cart_add_at,
        seconds_since_cart_add / 3600.0 as hours_since_cart_add,
        cart_product_id,
        cart_value
    from evaluated
    where
        has_analytics_consent
        -- the most recent cart add is at most max_age days old ...
        and last_cart_add_at >= 
    (as_of + cast(-30 as bigint) * interval 1 day)
        -- ... and strictly more than window_hours before as_of ...
        and seconds_since_cart_add > 24 * 3600
        -- ... with no purchase at or after it
        and not has_purchase_since_last_cart_add
)
select * from final
            ) as member
            union all
            select distinct
                member.user_key,
                'seg_customers' as segment
            from (
                with
users as (
    select * from floor.dim_users
),
final as (
    select
        user_key,
        user_id,
        lifecycle_stage,
        orders,
        revenue,
        last_order_at,
        days_since_last_order
    from users
    where
        has_analytics_consent
        and lifecycle_stage in ('customer', 'repeat_customer')
)
select * from final
            ) as member
            union all
            select distinct
                member.user_key,
                'seg_email_fatigued' as segment
            from (
                with
users as (
    select * from floor.dim_users
),
final as (
    select
        user_key,
        user_id,
        recent_deliveries,
        recent_deliveries_opened,
        emails_delivered,
        last_email_delivered_at,
        last_email_engagement_at
    from users
    where
        has_analytics_consent
        and recent_deliveries >= 5
        and recent_deliveries_opened = 0
)
select * from final
            ) as member
            union all
            select distinct
                member.user_key,
                'seg_engaged_non_converters' as segment
            from (
                with
users as (
    select * from floor.dim_users
),
final as (
    select
        user_key,
        user_id,
        emails_opened_open_window,
        last_email_engagement_at,
        last_order_at,
        days_since_last_order
    from users
    where
        has_analytics_consent
        and emails_opened_open_window >= 3
        -- no purchase in the last N days: the last order (if any) is at least N days old
        and (
            last_order_at is null
            or last_order_at <= 
    (as_of + cast(-30 as bigint) * interval 1 day)
        )
)
select * from final
            ) as member
            union all
            select distinct
                member.user_key,
                'seg_high_intent' as segment
            from (
                with
users as (
    select * from floor.dim_users
),
final as (
    select
        user_key,
        user_id,
        pricing_views_intent_window,
        top_product_id_intent_window,
        top_product_views_intent_window,
        last_pricing_view_at,
        last_product_view_at
    from users
    where
        has_analytics_consent
        and (
            pricing_views_intent_window >= 3
            or top_product_views_intent_window >= 3
        )
)
select * from final
            ) as member
            union all
            select distinct
                member.user_key,
                'seg_high_value_customers' as segment
            from (
                with
users as (
    select * from floor.dim_users
),
final as (
    select
        user_key,
        user_id,
        revenue_365d,
        orders_365d,
        last_order_at
    from users
    where
        has_analytics_consent
        and revenue_365d >= 500
)
select * from final
            ) as member
            union all
            select distinct
                member.user_key,
                'seg_highly_engaged' as segment
            from (
                with
users as (
    select * from floor.dim_users
),
final as (
    select
        user_key,
        user_id,
        sessions_30d,
        active_days_30d,
        last_seen_at
    from users
    where
        has_analytics_consent
        and sessions_30d >= 8
        and active_days_30d >= 4
)
select * from final
            ) as member
            union all
            select distinct
                member.user_key,
                'seg_lapsed_customers' as segment
            from (
                with
users as (
    select * from floor.dim_users
),
final as (
    select
        user_key,
        user_id,
        lifecycle_stage,
        orders,
        revenue,
        last_order_at,
        days_since_last_order
    from users
    where
        has_analytics_consent
        and lifecycle_stage = 'lapsed'
)
select * from final
            ) as member
            union all
            select distinct
                member.user_key,
                'seg_leads' as segment
            from (
                with
users as (
    select * from floor.dim_users
),
final as (
    select
        user_key,
        user_id,
        lifecycle_stage,
        first_cart_intent_at,
        cart_adds,
        checkout_started_count,
        last_seen_at
    from users
    where
        has_analytics_consent
        and lifecycle_stage = 'lead'
)
select * from final
            ) as member
            union all
            select distinct
                member.user_key,
                'seg_new_prospects' as segment
            from (
                with
users as (
    select * from floor.dim_users
),
final as (
    select
        user_key,
        user_id,
        lifecycle_stage,
        first_seen_at,
        first_identified_at,
        product_views,
        engagement_score
    from users
    where
        has_analytics_consent
        and lifecycle_stage = 'prospect'
        and first_seen_at > 
    (as_of + cast(-30 as bigint) * interval 1 day)
)
select * from final
            ) as member
            union all
            select distinct
                member.user_key,
                'seg_rfm_at_risk' as segment
            from (
                with
users as (
    select * from floor.dim_users
),
final as (
    select
        user_key,
        user_id,
        recency_score,
        frequency_score,
        monetary_score,
        rfm_recency_days,
        rfm_frequency,
        rfm_monetary,
        last_order_at
    from users
    where
        has_analytics_consent
        and recency_score <= 2
        and frequency_score >= 3
)
select * from final
            ) as member
            union all
            select distinct
                member.user_key,
                'seg_rfm_champions' as segment
            from (
                with
users as (
    select * from floor.dim_users
),
final as (
    select
        user_key,
        user_id,
        recency_score,
        frequency_score,
        monetary_score,
        rfm_recency_days,
        rfm_frequency,
        rfm_monetary,
        last_order_at
    from users
    where
        has_analytics_consent
        and recency_score >= 4
        and frequency_score >= 4
)
select * from final
            ) as member
            union all
            select distinct
                member.user_key,
                'seg_rfm_hibernating' as segment
            from (
                with
users as (
    select * from floor.dim_users
),
final as (
    select
        user_key,
        user_id,
        recency_score,
        frequency_score,
        monetary_score,
        rfm_recency_days,
        rfm_frequency,
        rfm_monetary,
        last_order_at
    from users
    where
        has_analytics_consent
        and recency_score <= 2
        and frequency_score <= 2
)
select * from final
            ) as member
            union all
            select distinct
                member.user_key,
                'seg_rfm_loyal' as segment
            from (
                with
users as (
    select * from floor.dim_users
),
final as (
    select
        user_key,
        user_id,
        recency_score,
        frequency_score,
        monetary_score,
        rfm_recency_days,
        rfm_frequency,
        rfm_monetary,
        last_order_at
    from users
    where
        has_analytics_consent
        and recency_score >= 3
        and frequency_score >= 3
        -- champions are the better cell of the grid
        and not (
            recency_score >= 4
            and frequency_score >= 4
        )
)
select * from final
            ) as member
),
open_memberships as (
        select
            cast(null as TEXT) as membership_id,
            cast(null as TEXT) as user_key,
            cast(null as TEXT) as segment,
            cast(null as timestamp) as entered_at
        where 1 = 0
),
exits as (
    -- open memberships whose user is no longer in the segment: closed at this as_of
    select
        open_memberships.membership_id,
        open_memberships.user_key,
        open_memberships.segment,
        open_memberships.entered_at,
        cast('__AS_OF__' as timestamp) as exited_at,
        false as is_current
    from open_memberships
    left join current_members
        on
            open_memberships.user_key = current_members.user_key
            and open_memberships.segment = current_members.segment
    where current_members.user_key is null
),
entries as (
    -- members without an open membership: a new spell entered at this as_of
    select
        current_members.user_key,
        current_members.segment,
        cast('__AS_OF__' as timestamp) as entered_at
    from current_members
    left join open_memberships
        on
            current_members.user_key = open_memberships.user_key
            and current_members.segment = open_memberships.segment
    where open_memberships.user_key is null
),
new_memberships as (
    select
        md5(cast(user_key || '|' || segment || '|' || cast(entered_at as TEXT) as TEXT)) as membership_id,
        user_key,
        segment,
        entered_at,
        cast(null as timestamp) as exited_at,
        true as is_current
    from entries
),
final as (
    select * from exits
    union all
    select * from new_memberships
)
select * from final;

-- segment_memberships
create or replace table floor.segment_memberships as
with
history as (
    select * from floor.segment_membership_history
),
final as (
    select
        user_key,
        segment,
        entered_at
    from history
    where is_current
)
select * from final;

-- segment_sizes_daily
create or replace table floor.segment_sizes_daily as
with
history as (
    select * from floor.segment_membership_history
),
segments as (
    select 'seg_at_risk_churn' as segment
        union all
    select 'seg_browse_abandoners' as segment
        union all
    select 'seg_cart_abandoners' as segment
        union all
    select 'seg_customers' as segment
        union all
    select 'seg_email_fatigued' as segment
        union all
    select 'seg_engaged_non_converters' as segment
        union all
    select 'seg_high_intent' as segment
        union all
    select 'seg_high_value_customers' as segment
        union all
    select 'seg_highly_engaged' as segment
        union all
    select 'seg_lapsed_customers' as segment
        union all
    select 'seg_leads' as segment
        union all
    select 'seg_new_prospects' as segment
        union all
    select 'seg_rfm_at_risk' as segment
        union all
    select 'seg_rfm_champions' as segment
        union all
    select 'seg_rfm_hibernating' as segment
        union all
    select 'seg_rfm_loyal' as segment
),
changes as (
    select
        segment,
        cast(entered_at as date) as change_date,
        1 as entered,
        0 as exited
    from history
    union all
    select
        segment,
        cast(exited_at as date) as change_date,
        0 as entered,
        1 as exited
    from history
    where exited_at is not null
),
bounds as (
    select
        cast(cast('__AS_OF__' as timestamp) as date) as last_date,
        min(change_date) as first_change_date
    from changes
),
spine_start as (
    select
        last_date,
        case
            when first_change_date > 
    (last_date + cast(-1829 as bigint) * interval 1 day)
                then first_change_date
            else cast(
    (last_date + cast(-1829 as bigint) * interval 1 day) as date)
        end as first_date
    from bounds
    where first_change_date is not null
),
numbers as (
    select
        generate_series as generated_number
    from generate_series(1, 1830)
),
days as (
    select cast(
    (spine_start.first_date + cast(numbers.generated_number - 1 as bigint) * interval 1 day) as date)
        as size_date
    from numbers
    cross join spine_start
    where
    (spine_start.first_date + cast(numbers.generated_number - 1 as bigint) * interval 1 day)
        <= spine_start.last_date
),
carried_in as (
    -- members from before the first day shown
    select
        changes.segment,
        sum(changes.entered - changes.exited) as members
    from changes
    cross join spine_start
    where changes.change_date < spine_start.first_date
    group by changes.segment
),
daily_changes as (
    select
        segment,
        change_date,
        sum(entered) as entered,
        sum(exited) as exited
    from changes
    group by segment, change_date
),
grid as (
    select
        segments.segment,
        days.size_date,
        coalesce(daily_changes.entered, 0) as users_entered,
        coalesce(daily_changes.exited, 0) as users_exited,
        coalesce(carried_in.members, 0) as carried_in_members
    from segments
    cross join days
    left join daily_changes
        on
            segments.segment = daily_changes.segment
            and days.size_date = daily_changes.change_date
    left join carried_in
        on segments.segment = carried_in.segment
),
final as (
    select
        size_date,
        segment,
        cast(carried_in_members + sum(users_entered - users_exited) over (
            partition by segment
            order by size_date
            rows between unbounded preceding and current row
        ) as bigint) as members,
        cast(users_entered as bigint) as users_entered,
        cast(users_exited as bigint) as users_exited
    from grid
)
select * from final;

-- segment_transitions
create or replace table floor.segment_transitions as
with
lifecycle_history as (
    select * from floor.int_user_lifecycle_history
),
consent as (
    select * from floor.int_user_consent
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
select * from final;
