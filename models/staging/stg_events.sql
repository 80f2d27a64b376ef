{#- Payload fields read by staging: output name -> JSONPath. -#}
{%- set json_fields = {
    'previous_id': '$.previousId',
    'properties': '$.properties',
    'consent_preferences': '$.context.consent.categoryPreferences',
    'traits_email_hmac': '$.traits.email_hmac',
    'context_traits_email_hmac': '$.context.traits.email_hmac',
    'traits_email_encrypted': '$.traits.email_encrypted',
    'context_traits_email_encrypted': '$.context.traits.email_encrypted',
    'properties_path': '$.properties.path',
    'context_page_path': '$.context.page.path',
    'properties_url': '$.properties.url',
    'context_page_url': '$.context.page.url',
    'properties_referrer': '$.properties.referrer',
    'context_page_referrer': '$.context.page.referrer',
    'properties_title': '$.properties.title',
    'context_page_title': '$.context.page.title',
    'utm_source': '$.context.campaign.source',
    'utm_medium': '$.context.campaign.medium',
    'utm_campaign': '$.context.campaign.name',
    'device_type': '$.context.device.type',
    'top_channel': '$.channel',
    'context_channel': '$.context.channel',
    'product_id': '$.properties.product_id',
    'category': '$.properties.category',
    'price_text': '$.properties.price',
    'order_id': '$.properties.order_id',
    'revenue_text': '$.properties.revenue',
    'currency': '$.properties.currency',
    'campaign_id': '$.properties.campaign_id',
    'campaign_name': '$.properties.campaign_name',
    'experiment_id': '$.properties.experiment_id',
    'variation': '$.properties.variation_name',
    'forced_variant_text': '$.properties.forced_variant',
    'tags': '$.traits.tags',
    'tags_source': '$.traits.tags_source',
} -%}

{{
    config(
        materialized='incremental',
        incremental_strategy=refresh_strategy('delete+insert'),
        partition_by=refresh_partition_by(),
        unique_key='message_id',
        on_schema_change='append_new_columns'
    )
}}

with

{% if is_incremental() -%}
new_rows as (

    -- the high-water mark is the load time (loaded_at), never occurred_at: a client clock
    -- far in the future cannot stall it
    select * from {{ source('raw', 'events') }}
    where loaded_at > {{ max_timestamp_literal(this, 'loaded_at') }}
        -- a backfill re-stages its day (by client or receive time, a day either side:
        -- re-staging an extra row is harmless, missing one is not)
        or {{ backfill_window_condition('coalesce(occurred_at, received_at)', pad_days=1) }}
        or {{ backfill_window_condition('received_at', pad_days=1) }}

),

copied_ids as (

    -- messages of new rows with another raw row (normally none: the loader keeps message_id
    -- unique); found on the narrow message_id column, so raw payloads are read only for them
    select message_id from {{ source('raw', 'events') }}
    where message_id in (select message_id from new_rows)
    group by message_id
    having count(*) > 1

),

events as (

    -- every raw row of those messages, including copies loaded earlier (the earliest wins)
    select * from new_rows
    where message_id not in (select message_id from copied_ids)
    union all
    select * from {{ source('raw', 'events') }}
    where message_id in (select message_id from copied_ids)

),
{%- else -%}
events as {{ inline_cte() }} (

    select * from {{ source('raw', 'events') }}

),
{%- endif %}

event_type_map as (

    select
        lower(trim(message_type)) as message_type_key,
        lower(trim(event_name)) as event_name_key,
        event_type
    from {{ ref('event_type_map') }}

),

duplicated_ids as (

    -- the loader keeps message_id unique in raw.events, so this is normally empty; only the
    -- messages it lists are ranked (a hash aggregate instead of a sort of all of raw)
    select message_id from events
    group by message_id
    having count(*) > 1

),

deduplicated as (

    select
        *,
        1 as message_rank
    from events
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
        {{ json_string_list('payload', json_fields.values() | list) }} as json_values,
        -- a second parse of the payload, so only where its text can hold properties.products:
        -- the key written plainly, or any \u escape (a key can spell itself with one)
        case
            when {{ dbt.position("'\"products\"'", 'payload') }} > 0
                or {{ dbt.position("chr(92) || 'u'", 'payload') }} > 0
                then {{ json_products_amount('payload', '$.properties.products') }}
        end as products_amount
    from deduplicated

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
        {% for field in json_fields -%}
            {{ list_item('json_values', loop.index) }} as {{ field }},
        {% endfor -%}
        products_amount,
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
        -- Segment's skew correction: receivedAt - (sentAt - timestamp), never after
        -- receivedAt. Without sentAt, or with sentAt before timestamp (no clock offset can
        -- explain a message sent before it happened), the earlier of timestamp and
        -- receivedAt is kept.
        case
            when extracted.client_occurred_at is null then extracted.received_at
            when extracted.sent_at is null or extracted.sent_at < extracted.client_occurred_at
                then least(extracted.client_occurred_at, extracted.received_at)
            else {{ timestamp_shift('extracted.client_occurred_at', 'extracted.sent_at', 'extracted.received_at') }}
        end as occurred_at,
        extracted.client_occurred_at,
        extracted.sent_at,
        extracted.received_at,
        extracted.loaded_at,
        extracted.load_id,
        extracted.source,
        extracted.properties,
        {{ normalize_path('coalesce(extracted.properties_path, extracted.context_page_path)') }} as page_path,
        coalesce(extracted.properties_url, extracted.context_page_url) as page_url,
        coalesce(extracted.properties_referrer, extracted.context_page_referrer) as page_referrer,
        coalesce(extracted.properties_title, extracted.context_page_title) as page_title,
        case when extracted.is_page_or_screen then extracted.event_name end as page_name,
        extracted.utm_source,
        extracted.utm_medium,
        extracted.utm_campaign,
        lower(extracted.device_type) as device_type,
        -- Segment's libraries put channel at the top level; context.channel is the fallback
        lower(trim(coalesce(extracted.top_channel, extracted.context_channel))) as channel,
        extracted.product_id,
        extracted.category,
        {{ safe_double('extracted.price_text') }} as price,
        extracted.order_id,
        {{ safe_double('extracted.revenue_text') }} as revenue,
        upper(trim(extracted.currency)) as currency,
        extracted.campaign_id,
        extracted.campaign_name,
        extracted.experiment_id,
        extracted.variation,
        -- a variant forced for QA (the promotion API's ?variant=): not an analysable exposure
        coalesce(lower(extracted.forced_variant_text) = 'true', false) as is_forced_exposure,
        case when extracted.message_type = 'identify' then extracted.tags end as tags,
        case when extracted.message_type = 'identify' then extracted.tags_source end as tags_source,
        {{ analytics_consent('extracted.consent_preferences') }} as has_analytics_consent,
        -- every category the message states (the consent API answers them back)
        extracted.consent_preferences as consent_categories,
        -- the loader pseudonymised the email (ewh/privacy/policy.py): a keyed HMAC, and the
        -- address encrypted under the user's data key for exports; never the address itself
        coalesce(extracted.traits_email_hmac, extracted.context_traits_email_hmac) as email_hash,
        case
            when extracted.traits_email_hmac is not null then extracted.traits_email_encrypted
            else extracted.context_traits_email_encrypted
        end as email_encrypted,
        extracted.products_amount
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

classified as (

    select
        *,
        -- a person did it: page and screen views, and track events not sent by a server
        -- (channel not in var session_excluded_channels); identify, alias, group never
        {{ is_user_initiated('message_type', 'channel') }} as is_user_initiated,
        {{ order_event('event_name', 'event_type') }} as order_event
    from typed

),

final as (

    select
        *,
        -- Order Refunded: a partial refund states its amount as revenue, else as its products'
        -- price x quantity; with neither, the whole order is refunded
        case when order_event = 'refunded' then coalesce(revenue, products_amount) end as refund_amount,
        coalesce(order_event = 'refunded' and revenue is null and products_amount is null, false)
            as is_full_refund
    from classified

)

{{ select_upserted_rows('message_id', 'cast(loaded_at as date)') }}
