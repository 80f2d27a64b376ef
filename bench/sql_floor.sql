-- The SQL floor: the heavy work of `dbt build`, hand-written as one minimal DuckDB script.
--
-- Written by hand, not derived from the models: the simplest fast SQL that computes the same
-- answers as the models where they overlap (fct_sessions, dim_users and every segment: the
-- bench harness compares their rows with dbt's). No tests, no history, no incremental
-- bookkeeping, no columns the segments do not need. bench/sql_floor.py runs it in two steps:
--   load   the first statement: read_json of the NDJSON day files into floor.events_raw
--          (explicit columns; the `ewh load` counterpart);
--   build  every other statement (the `dbt build` counterpart).
-- Placeholders: __FILES__ (a list literal of the day files), __AS_OF__, __SEED_DIR__.
-- Rules restated from the models (vars at their dbt_project.yml defaults): see bench/README.md.

-- events_raw (load)
create or replace table floor.events_raw as
select
    messageId as message_id,
    lower(trim(type)) as message_type,
    case lower(trim(type)) when 'track' then event when 'page' then name when 'screen' then name end
        as event_name,
    userId as user_id,
    anonymousId as anonymous_id,
    previousId as previous_id,
    "timestamp" as timestamp_text,
    sentAt as sent_at_text,
    receivedAt as received_at_text,
    channel as top_channel,
    properties,
    context
from read_json(__FILES__,
    format = 'newline_delimited', ignore_errors = true,
    columns = {
        'type': 'VARCHAR', 'messageId': 'VARCHAR', 'event': 'VARCHAR', 'name': 'VARCHAR',
        'userId': 'VARCHAR', 'anonymousId': 'VARCHAR', 'previousId': 'VARCHAR',
        'timestamp': 'VARCHAR', 'sentAt': 'VARCHAR', 'receivedAt': 'VARCHAR',
        'channel': 'VARCHAR',
        'properties': 'STRUCT(path VARCHAR, url VARCHAR, referrer VARCHAR, title VARCHAR,
            product_id VARCHAR, category VARCHAR, price VARCHAR, order_id VARCHAR,
            revenue VARCHAR, currency VARCHAR, campaign_id VARCHAR, email_id VARCHAR,
            products JSON)',
        'context': 'STRUCT(channel VARCHAR,
            page STRUCT(path VARCHAR, url VARCHAR, referrer VARCHAR, title VARCHAR),
            campaign STRUCT(source VARCHAR, medium VARCHAR, name VARCHAR),
            consent STRUCT(categoryPreferences JSON))'
    });

-- event_type_map (seed)
create or replace table floor.event_type_map as
select lower(trim(message_type)) as message_type, lower(trim(event_name)) as event_name, event_type
from read_csv('__SEED_DIR__/event_type_map.csv', header = true, all_varchar = true);

-- exchange_rates (seed)
create or replace table floor.exchange_rates as
select upper(trim(currency)) as currency, cast(rate_date as date) as rate_date,
    cast(rate_to_reporting as double) as rate_to_reporting
from read_csv('__SEED_DIR__/exchange_rates.csv', header = true, all_varchar = true);

-- events: the contract's rejections (the generator's malformed kinds), dedupe by messageId
-- (the earliest received copy), skew correction, the typed fields the rules read
create or replace table floor.events as
with accepted as (
    select
        *,
        -- a timestamp must state its offset (Z or +hh:mm)
        case when regexp_matches(timestamp_text, '(Z|[+-]\d\d:?\d\d)$')
            then cast(cast(timestamp_text as timestamptz) as timestamp) end as client_at,
        cast(cast(sent_at_text as timestamptz) as timestamp) as sent_at,
        cast(cast(received_at_text as timestamptz) as timestamp) as received_at
    from floor.events_raw
    where
        message_id is not null
        and (user_id is not null or anonymous_id is not null)
        and (message_type <> 'track' or event_name is not null)
        and message_type is not null
),
valid as (
    select * from accepted where client_at is not null
),
repeated as (
    select message_id from valid group by message_id having count(*) > 1
),
deduplicated as (
    select * from valid where message_id not in (select message_id from repeated)
    union all
    select * from valid where message_id in (select message_id from repeated)
    qualify row_number() over (partition by message_id order by received_at) = 1
),
typed as (
    select
        d.message_id,
        d.message_type,
        d.event_name,
        coalesce(by_name.event_type, by_type.event_type, 'other') as event_type,
        d.user_id,
        d.anonymous_id,
        d.previous_id,
        -- skew: receivedAt - (sentAt - timestamp); without a usable sentAt, the earlier of
        -- timestamp and receivedAt
        case
            when d.sent_at is null or d.sent_at < d.client_at then least(d.client_at, d.received_at)
            else d.received_at - (d.sent_at - d.client_at)
        end as occurred_at,
        d.received_at,
        case
            when coalesce(d.properties.path, d.context.page.path) is not null
                then coalesce(nullif(regexp_replace(regexp_replace(
                    lower(trim(coalesce(d.properties.path, d.context.page.path))),
                    '[?#].*$', ''), '/+$', ''), ''), '/')
        end as page_path,
        case when d.message_type in ('page', 'screen') then d.event_name end as page_name,
        lower(trim(coalesce(d.top_channel, d.context.channel))) as channel,
        d.properties.product_id as product_id,
        try_cast(d.properties.price as double) as price,
        d.properties.order_id as order_id,
        try_cast(d.properties.revenue as double) as revenue,
        upper(trim(d.properties.currency)) as currency,
        d.properties.campaign_id as campaign_id,
        d.properties.email_id as email_id,
        d.properties.products as products,
        case lower(cast(d.context.consent.categoryPreferences as varchar))->>'$.analytics'
            when 'true' then true when '1' then true
            when 'false' then false when '0' then false
        end as has_analytics_consent
    from deduplicated as d
    left join floor.event_type_map as by_name
        on d.message_type = by_name.message_type and lower(trim(d.event_name)) = by_name.event_name
    left join floor.event_type_map as by_type
        on d.message_type = by_type.message_type and by_type.event_name = '*'
)
select
    *,
    message_type in ('page', 'screen')
    or (message_type = 'track' and coalesce(channel, '') <> 'server') as is_user_initiated
from typed
where occurred_at <= '__AS_OF__';

-- identity: userIds merged by alias (connected components), each person keyed by its
-- smallest userId that a message carries; devices linked to one person map to it, shared
-- devices are split at each identification by another person
create or replace table floor.user_keys as
with recursive
user_edges as (
    select previous_id as a, user_id as b from floor.events
    where
        message_type = 'alias' and previous_id is not null and user_id is not null
        and previous_id <> user_id and (anonymous_id is null or previous_id <> anonymous_id)
),
edges as (
    select a, b from user_edges union select b, a from user_edges
),
reach (node, other) as (
    select a, a from edges
    union
    select reach.node, edges.b from reach inner join edges on reach.other = edges.a
),
components as (
    select node, min(other) as label from reach group by node
),
carried as (
    select distinct user_id from floor.events where user_id is not null
),
keyed_components as (
    select
        components.node as user_id,
        coalesce(
            min(carried.user_id) over (partition by components.label), components.label
        ) as user_key
    from components
    left join carried on components.node = carried.user_id
)
-- only userIds merged with another need a row: any other userId is its own key
select user_id, user_key from keyed_components;

create or replace table floor.device_people as
with links as (
    select
        e.anonymous_id,
        e.user_id,
        coalesce(k.user_key, e.user_id) as user_key,
        e.occurred_at,
        e.received_at,
        e.message_id
    from floor.events as e
    left join floor.user_keys as k on e.user_id = k.user_id
    where e.anonymous_id is not null and e.user_id is not null
)
select
    anonymous_id,
    count(distinct user_key) as people,
    arg_min(user_key, (occurred_at, received_at, message_id, user_id)) as user_key,
    arg_min(user_id, (occurred_at, received_at, message_id, user_id)) as user_id
from links
group by anonymous_id;

-- every event (consent-denied ones too: they carry the consent statement) with its person
create or replace table floor.keyed_events as
with shared_device_events as (
    -- every event of a device shared by several people, with the person of the last
    -- identification by a different person than the one before (a period start)
    select
        e.message_id,
        e.anonymous_id,
        e.occurred_at,
        e.received_at,
        e.user_id is not null as is_identification,
        coalesce(k.user_key, e.user_id) as ident_user_key,
        e.user_id as ident_user_id
    from floor.events as e
    inner join floor.device_people as d on e.anonymous_id = d.anonymous_id and d.people > 1
    left join floor.user_keys as k on e.user_id = k.user_id
),
period_starts as (
    select
        *,
        case when is_identification and ident_user_key is distinct from lag(ident_user_key)
            over (partition by anonymous_id, is_identification
                  order by occurred_at, received_at, message_id)
            then true end as is_period_start
    from shared_device_events
),
periods as (
    select
        message_id,
        coalesce(
            last_value(case when is_period_start then ident_user_key end ignore nulls) over w,
            first_value(case when is_period_start then ident_user_key end ignore nulls) over everything
        ) as user_key,
        coalesce(
            last_value(case when is_period_start then ident_user_id end ignore nulls) over w,
            first_value(case when is_period_start then ident_user_id end ignore nulls) over everything
        ) as user_id
    from period_starts
    where true
    window
        w as (partition by anonymous_id order by occurred_at, received_at, message_id
              rows between unbounded preceding and current row),
        everything as (partition by anonymous_id order by occurred_at, received_at, message_id
              rows between unbounded preceding and unbounded following)
    qualify not is_identification
),
user_ids as (
    select distinct user_id from floor.events where user_id is not null
)
select
    e.*,
    case
        when e.user_id is not null then coalesce(k.user_key, e.user_id)
        when d.people = 1 then d.user_key
        when p.user_key is not null then p.user_key
        when u.user_id is not null then 'anonymous:' || e.anonymous_id
        else e.anonymous_id
    end as user_key,
    case
        when e.user_id is not null then e.user_id
        when d.people = 1 then d.user_id
        else p.user_id
    end as stitched_user_id,
    coalesce(e.anonymous_id, e.user_id) as device_id
from floor.events as e
left join floor.user_keys as k on e.user_id = k.user_id
left join floor.device_people as d on e.user_id is null and e.anonymous_id = d.anonymous_id
left join periods as p on e.user_id is null and d.people > 1 and e.message_id = p.message_id
left join user_ids as u on e.user_id is null and e.anonymous_id = u.user_id;

-- sessions: per device, user-initiated events; a new session after more than 1800 s, when the
-- person changes, and every 12 h from the visit's start
create or replace table floor.fct_sessions as
with flagged as (
    select
        device_id,
        user_key,
        occurred_at,
        received_at,
        message_id,
        lag(occurred_at) over w as previous_at,
        lag(user_key) over w as previous_user_key,
        previous_at is null
        or epoch_us(occurred_at) - epoch_us(previous_at) > 1800000000
        or user_key <> previous_user_key as is_visit_start
    from floor.keyed_events
    where is_user_initiated and coalesce(has_analytics_consent, true)
    window w as (partition by device_id order by occurred_at, received_at, message_id)
),
visits as (
    select
        *,
        max(case when is_visit_start then occurred_at end) over (
            partition by device_id order by occurred_at, received_at, message_id
            rows between unbounded preceding and current row
        ) as visit_started_at
    from flagged
),
starts as (
    select
        *,
        is_visit_start
        or (epoch_us(occurred_at) - epoch_us(visit_started_at)) // 43200000000
        > (epoch_us(previous_at) - epoch_us(visit_started_at)) // 43200000000
            as is_session_start
    from visits
),
numbered as (
    select
        *,
        sum(case when is_session_start then 1 else 0 end) over (
            partition by device_id order by occurred_at, received_at, message_id
            rows between unbounded preceding and current row
        ) as device_session_number
    from starts
)
select
    device_id,
    device_session_number,
    any_value(user_key) as user_key,
    min(occurred_at) as started_at,
    max(occurred_at) as ended_at,
    count(*) as event_count
from numbered
group by device_id, device_session_number;

-- orders: the first purchase event of each order id; cancelled and refunded by later events
create or replace table floor.orders as
with order_events as (
    select
        message_id,
        user_key,
        coalesce(order_id, message_id) as order_id,
        occurred_at,
        received_at,
        revenue,
        coalesce(nullif(currency, ''), 'USD') as currency,
        case
            when event_type = 'purchase' then 'completed'
            when lower(trim(event_name)) = 'order refunded' then 'refunded'
            when lower(trim(event_name)) in ('order cancelled', 'order canceled') then 'cancelled'
        end as order_event,
        products
    from floor.keyed_events
    where coalesce(has_analytics_consent, true) and (event_type = 'purchase' or order_id is not null)
),
first_purchases as (
    select
        order_id,
        arg_min(message_id, (occurred_at, received_at, message_id)) as message_id,
        arg_min(user_key, (occurred_at, received_at, message_id)) as user_key,
        min(occurred_at) as ordered_at,
        arg_min(revenue, (occurred_at, received_at, message_id)) as revenue,
        arg_min(currency, (occurred_at, received_at, message_id)) as currency
    from order_events
    where order_event = 'completed'
    group by order_id
),
refunds as (
    select
        order_id,
        bool_or(revenue is null and amount is null) as is_full,
        sum(coalesce(revenue, amount, 0)) as partial
    from (
        select
            order_id,
            revenue,
            list_sum(list_transform(
                json_extract(products, '$[*]'),
                lambda p: coalesce(try_cast(p->>'$.price' as double), 0)
                    * coalesce(try_cast(p->>'$.quantity' as double), 1)
            )) as amount
        from order_events
        where order_event = 'refunded'
    )
    group by order_id
),
rated as (
    select
        f.*,
        case
            when f.currency = 'USD' then 1.0
            else (
                select arg_max(r.rate_to_reporting, r.rate_date) from floor.exchange_rates as r
                where r.currency = f.currency and r.rate_date <= cast(f.ordered_at as date)
            )
        end as rate,
        case
            when rf.order_id is null then 0.0
            when rf.is_full then coalesce(f.revenue, 0)
            else least(rf.partial, coalesce(f.revenue, 0))
        end as refunded
    from first_purchases as f
    left join refunds as rf on f.order_id = rf.order_id
)
select
    order_id,
    user_key,
    message_id,
    ordered_at,
    rate is not null as has_known_currency,
    case when rate is not null then round(greatest(
        round(coalesce(revenue, 0) * rate, 2) - round(refunded * rate, 2), 0), 2) end
        as net_revenue,
    order_id in (
        select coalesce(order_id, message_id) from order_events where order_event = 'cancelled'
    ) as is_cancelled
from rated;

-- emails: one row per user and email (email_id, else the matched delivery of the campaign,
-- else the campaign); a click is an open
create or replace table floor.emails as
with email_events as (
    select message_id, user_key, event_type, occurred_at, campaign_id, email_id
    from floor.keyed_events
    where
        coalesce(has_analytics_consent, true)
        and event_type in ('email_delivered', 'email_open', 'email_click')
),
deliveries as (
    select
        user_key,
        campaign_id,
        coalesce('email_id:' || email_id, 'campaign:' || campaign_id) as email_key,
        occurred_at as delivered_at
    from email_events
    where event_type = 'email_delivered' and (email_id is not null or campaign_id is not null)
),
matched as (
    select
        e.message_id,
        arg_min(d.email_key, (
            d.delivered_at > e.occurred_at,
            case when d.delivered_at <= e.occurred_at then -epoch_us(d.delivered_at) else 0 end,
            d.delivered_at,
            d.email_key
        )) as email_key
    from email_events as e
    inner join deliveries as d on e.user_key = d.user_key and e.campaign_id = d.campaign_id
    where e.event_type in ('email_open', 'email_click') and e.email_id is null
    group by e.message_id
),
keyed as (
    select
        e.*,
        coalesce('email_id:' || e.email_id, m.email_key, 'campaign:' || e.campaign_id) as email_key
    from email_events as e
    left join matched as m on e.message_id = m.message_id
)
select
    user_key,
    email_key,
    coalesce(min(occurred_at) filter (where event_type = 'email_delivered'), min(occurred_at))
        as delivered_at,
    min(occurred_at) filter (where event_type in ('email_open', 'email_click')) as first_opened_at,
    max(occurred_at) filter (where event_type in ('email_open', 'email_click')) as last_opened_at
from keyed
where email_key is not null
group by user_key, email_key;

-- dim_users: the per-user features the segments read
create or replace table floor.dim_users as
with stitched as (
    select
        k.*,
        case
            when not k.is_user_initiated then 0
            when k.event_type = 'purchase' and (o.message_id is null or o.is_cancelled) then 0
            else case k.event_type
                when 'page_view' then 1 when 'screen_view' then 1 when 'click' then 1
                when 'search' then 2 when 'video_play' then 2 when 'product_view' then 2
                when 'add_to_cart' then 5 when 'remove_from_cart' then 1
                when 'checkout_started' then 5 when 'purchase' then 10 when 'signup' then 5
                when 'email_open' then 2 when 'email_click' then 4 else 0 end
        end as points
    from floor.keyed_events as k
    left join floor.orders as o on k.message_id = o.message_id
    where coalesce(k.has_analytics_consent, true)
),
activity as (
    select
        user_key,
        coalesce(
            arg_max(stitched_user_id, (occurred_at, received_at, message_id))
                filter (where user_id is not null),
            arg_max(stitched_user_id, (occurred_at, received_at, message_id))
                filter (where stitched_user_id is not null)
        ) as user_id,
        min(occurred_at) filter (where is_user_initiated) as first_seen_at,
        count(distinct cast(occurred_at as date)) filter (
            where is_user_initiated and occurred_at > timestamp '__AS_OF__' - interval 30 day
        ) as active_days_30d,
        count(*) filter (where event_type = 'product_view'
            and occurred_at > timestamp '__AS_OF__' - interval 7 day) as product_views_browse_window,
        count(*) filter (where event_type = 'add_to_cart'
            and occurred_at > timestamp '__AS_OF__' - interval 7 day) as cart_adds_browse_window,
        count(*) filter (where event_type in ('page_view', 'screen_view')
            and (lower(page_path) = '/pricing' or lower(page_name) = 'pricing')
            and occurred_at > timestamp '__AS_OF__' - interval 48 hour) as pricing_views_intent_window,
        min(occurred_at) filter (where event_type in ('add_to_cart', 'checkout_started'))
            as first_cart_intent_at,
        max(occurred_at) filter (where event_type = 'add_to_cart') as last_cart_add_at,
        coalesce(sum(points) filter (
            where occurred_at > timestamp '__AS_OF__' - interval 14 day), 0) as points_recent,
        coalesce(sum(points) filter (
            where occurred_at > timestamp '__AS_OF__' - interval 42 day
            and occurred_at <= timestamp '__AS_OF__' - interval 14 day), 0) as points_baseline
    from stitched
    group by user_key
),
product_interest as (
    select user_key, max(views) as top_product_views
    from (
        select user_key, product_id, count(*) as views from stitched
        where
            event_type = 'product_view' and product_id is not null
            and occurred_at > timestamp '__AS_OF__' - interval 48 hour
        group by user_key, product_id
    )
    group by user_key
),
sessions as (
    select user_key, count(*) as sessions_30d from floor.fct_sessions
    where started_at > timestamp '__AS_OF__' - interval 30 day
    group by user_key
),
consent as (
    select user_key, arg_max(has_analytics_consent, (occurred_at, received_at, message_id)) as consent
    from floor.keyed_events
    where has_analytics_consent is not null
    group by user_key
),
order_features as (
    select
        user_key,
        count(*) as orders,
        max(ordered_at) as last_order_at,
        round(coalesce(sum(net_revenue) filter (
            where has_known_currency and ordered_at > timestamp '__AS_OF__' - interval 365 day
        ), 0), 2) as revenue_365d
    from floor.orders
    where not is_cancelled
    group by user_key
),
rfm as (
    select
        user_key,
        cast(1 + floor(5.0 * (rank() over (order by recency_days desc) - 1) / count(*) over ())
            as integer) as recency_score,
        cast(1 + floor(5.0 * (rank() over (order by frequency) - 1) / count(*) over ())
            as integer) as frequency_score
    from (
        select
            o.user_key,
            floor(((epoch_us(timestamp '__AS_OF__') - epoch_us(max(o.ordered_at))) / 1000000.0)
                / 86400) as recency_days,
            count(*) as frequency
        from floor.orders as o
        left join consent as c on o.user_key = c.user_key
        where
            not o.is_cancelled and coalesce(c.consent, true)
            and o.ordered_at > timestamp '__AS_OF__' - interval 365 day
        group by o.user_key
    )
),
email_features as (
    select
        user_key,
        count(*) filter (where last_opened_at > timestamp '__AS_OF__' - interval 90 day)
            as emails_opened_open_window,
        count(*) filter (where recency_rank <= 5) as recent_deliveries,
        count(first_opened_at) filter (where recency_rank <= 5) as recent_deliveries_opened
    from (
        select
            *,
            row_number() over (partition by user_key order by delivered_at desc, email_key desc)
                as recency_rank
        from floor.emails
    )
    group by user_key
)
select
    a.user_key,
    a.user_id,
    case
        when coalesce(o.orders, 0) >= 1
            and not (o.last_order_at > timestamp '__AS_OF__' - interval 60 day) then 'lapsed'
        when coalesce(o.orders, 0) >= 2 then 'repeat_customer'
        when coalesce(o.orders, 0) >= 1 then 'customer'
        when a.user_id is not null and a.first_cart_intent_at is not null then 'lead'
        when a.user_id is not null then 'prospect'
        else 'visitor'
    end as lifecycle_stage,
    a.first_seen_at,
    coalesce(s.sessions_30d, 0) as sessions_30d,
    a.active_days_30d,
    a.product_views_browse_window,
    a.cart_adds_browse_window,
    a.pricing_views_intent_window,
    coalesce(p.top_product_views, 0) as top_product_views_intent_window,
    a.last_cart_add_at,
    coalesce(o.last_order_at >= a.last_cart_add_at, false) as has_purchase_since_last_cart_add,
    coalesce(o.orders, 0) as orders,
    o.last_order_at,
    coalesce(o.revenue_365d, 0) as revenue_365d,
    r.recency_score,
    r.frequency_score,
    coalesce(e.emails_opened_open_window, 0) as emails_opened_open_window,
    coalesce(e.recent_deliveries, 0) as recent_deliveries,
    coalesce(e.recent_deliveries_opened, 0) as recent_deliveries_opened,
    a.points_recent as engagement_points_recent,
    a.points_baseline as engagement_points_baseline,
    coalesce(c.consent, true) as has_analytics_consent,
    -- no prediction scores in the floor (the bench's raw.prediction_scores is empty too)
    cast(null as double) as purchase_propensity_percentile,
    cast(null as double) as churn_risk
from activity as a
left join sessions as s on a.user_key = s.user_key
left join product_interest as p on a.user_key = p.user_key
left join order_features as o on a.user_key = o.user_key
left join rfm as r on a.user_key = r.user_key
left join email_features as e on a.user_key = e.user_key
left join consent as c on a.user_key = c.user_key;

-- the 18 segments (models/segments/seg_*.sql), every one among users with analytics consent
create or replace table floor.seg_at_risk_churn as
select user_key from floor.dim_users
where
    has_analytics_consent and engagement_points_baseline >= 20
    and engagement_points_recent / 14.0 < 0.25 * (engagement_points_baseline / 28.0);

create or replace table floor.seg_browse_abandoners as
select user_key from floor.dim_users
where has_analytics_consent and product_views_browse_window >= 2 and cart_adds_browse_window = 0;

create or replace table floor.seg_cart_abandoners as
select user_key from floor.dim_users
where
    has_analytics_consent
    and last_cart_add_at > timestamp '__AS_OF__' - interval 30 day
    and last_cart_add_at <= timestamp '__AS_OF__'
    and not (last_cart_add_at > timestamp '__AS_OF__' - interval 24 hour)
    and not has_purchase_since_last_cart_add;

create or replace table floor.seg_customers as
select user_key from floor.dim_users
where has_analytics_consent and lifecycle_stage in ('customer', 'repeat_customer');

create or replace table floor.seg_email_fatigued as
select user_key from floor.dim_users
where has_analytics_consent and recent_deliveries >= 5 and recent_deliveries_opened = 0;

create or replace table floor.seg_engaged_non_converters as
select user_key from floor.dim_users
where
    has_analytics_consent and emails_opened_open_window >= 3
    and (last_order_at is null or last_order_at <= timestamp '__AS_OF__' - interval 30 day);

create or replace table floor.seg_high_intent as
select user_key from floor.dim_users
where has_analytics_consent
    and (pricing_views_intent_window >= 3 or top_product_views_intent_window >= 3);

create or replace table floor.seg_high_value_customers as
select user_key from floor.dim_users where has_analytics_consent and revenue_365d >= 500;

create or replace table floor.seg_highly_engaged as
select user_key from floor.dim_users
where has_analytics_consent and sessions_30d >= 8 and active_days_30d >= 4;

create or replace table floor.seg_lapsed_customers as
select user_key from floor.dim_users where has_analytics_consent and lifecycle_stage = 'lapsed';

create or replace table floor.seg_leads as
select user_key from floor.dim_users where has_analytics_consent and lifecycle_stage = 'lead';

create or replace table floor.seg_likely_buyers as
select user_key from floor.dim_users
where
    has_analytics_consent and purchase_propensity_percentile > 90
    and (last_order_at is null or last_order_at <= timestamp '__AS_OF__' - interval 30 day);

create or replace table floor.seg_new_prospects as
select user_key from floor.dim_users
where
    has_analytics_consent and lifecycle_stage = 'prospect'
    and first_seen_at > timestamp '__AS_OF__' - interval 30 day
    and first_seen_at <= timestamp '__AS_OF__';

create or replace table floor.seg_predicted_churn as
select user_key from floor.dim_users
where
    has_analytics_consent and churn_risk is not null
    and lifecycle_stage in ('customer', 'repeat_customer');

create or replace table floor.seg_rfm_at_risk as
select user_key from floor.dim_users
where has_analytics_consent and recency_score <= 2 and frequency_score >= 3;

create or replace table floor.seg_rfm_champions as
select user_key from floor.dim_users
where has_analytics_consent and recency_score >= 4 and frequency_score >= 4;

create or replace table floor.seg_rfm_hibernating as
select user_key from floor.dim_users
where has_analytics_consent and recency_score <= 2 and frequency_score <= 2;

create or replace table floor.seg_rfm_loyal as
select user_key from floor.dim_users
where
    has_analytics_consent and recency_score >= 3 and frequency_score >= 3
    and not (recency_score >= 4 and frequency_score >= 4);
