with

events as (

    select * from {{ source('raw', 'events') }}

),

event_type_map as (

    select
        lower(trim(message_type)) as message_type_key,
        lower(trim(event_name)) as event_name_key,
        event_type
    from {{ ref('event_type_map') }}

),

deduplicated as (

    select
        *,
        row_number() over (
            partition by message_id
            order by received_at, loaded_at
        ) as message_rank
    from events

),

unpacked as (

    -- pull the nested objects out once, so each field lookup parses a small document
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
        {{ json_string('payload', '$.previousId') }} as previous_id,
        {{ json_string('payload', '$.properties') }} as properties,
        {{ json_string('payload', '$.context') }} as context,
        {{ json_string('payload', '$.traits') }} as traits,
        {{ analytics_consent('payload') }} as has_analytics_consent
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
        previous_id,
        client_occurred_at,
        sent_at,
        received_at,
        loaded_at,
        load_id,
        source,
        properties,
        has_analytics_consent,
        coalesce(
            {{ json_string('properties', '$.path') }},
            {{ json_string('context', '$.page.path') }}
        ) as page_path,
        coalesce(
            {{ json_string('properties', '$.url') }},
            {{ json_string('context', '$.page.url') }}
        ) as page_url,
        coalesce(
            {{ json_string('properties', '$.referrer') }},
            {{ json_string('context', '$.page.referrer') }}
        ) as page_referrer,
        coalesce(
            {{ json_string('properties', '$.title') }},
            {{ json_string('context', '$.page.title') }}
        ) as page_title,
        case
            when message_type in ('page', 'screen') then event_name
        end as page_name,
        {{ json_string('context', '$.campaign.source') }} as utm_source,
        {{ json_string('context', '$.campaign.medium') }} as utm_medium,
        {{ json_string('context', '$.campaign.name') }} as utm_campaign,
        lower({{ json_string('context', '$.device.type') }}) as device_type,
        lower({{ json_string('context', '$.channel') }}) as channel,
        {{ json_string('properties', '$.product_id') }} as product_id,
        {{ json_string('properties', '$.category') }} as category,
        {{ json_number('properties', '$.price') }} as price,
        {{ json_string('properties', '$.order_id') }} as order_id,
        {{ json_number('properties', '$.revenue') }} as revenue,
        {{ json_string('properties', '$.currency') }} as currency,
        {{ json_string('properties', '$.campaign_id') }} as campaign_id,
        {{ json_string('properties', '$.campaign_name') }} as campaign_name,
        {{ json_string('properties', '$.experiment_id') }} as experiment_id,
        {{ json_string('properties', '$.variation_name') }} as variation,
        coalesce(
            {{ json_string('traits', '$.email') }},
            {{ json_string('context', '$.traits.email') }}
        ) as email
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
                then {{ timestamp_shift('extracted.client_occurred_at', 'extracted.sent_at', 'extracted.received_at') }}
            else coalesce(extracted.client_occurred_at, extracted.received_at)
        end as occurred_at,
        extracted.client_occurred_at,
        extracted.sent_at,
        extracted.received_at,
        extracted.loaded_at,
        extracted.load_id,
        extracted.source,
        extracted.properties,
        extracted.page_path,
        extracted.page_url,
        extracted.page_referrer,
        extracted.page_title,
        extracted.page_name,
        extracted.utm_source,
        extracted.utm_medium,
        extracted.utm_campaign,
        extracted.device_type,
        extracted.channel,
        extracted.product_id,
        extracted.category,
        cast(extracted.price as double) as price,
        extracted.order_id,
        cast(extracted.revenue as double) as revenue,
        extracted.currency,
        extracted.campaign_id,
        extracted.campaign_name,
        extracted.experiment_id,
        extracted.variation,
        extracted.has_analytics_consent,
        case
            when extracted.email is not null
                then {{ dbt.hash('lower(trim(extracted.email))') }}
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

select * from final
