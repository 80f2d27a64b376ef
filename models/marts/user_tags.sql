{#-
  The users' tags, one row per user and tag. Tags arrive as identify messages with
  traits.tags (PUT /api/users/{userId}/tags; the prediction step writes likely_buyer and
  churn_risk the same way, with traits.tags_source = predictions). Each source's latest
  identify (event order) replaces that source's earlier tags, so setting a source's tags
  to [] clears them and one source never overwrites another's. A message whose own context
  denies analytics consent is not read; tags from the predictions source show only while
  the user has analytics consent.
-#}
with

tag_messages as (

    select
        message_id,
        tags,
        coalesce(nullif(trim(tags_source), ''), 'manual') as tags_source
    from {{ ref('stg_events') }}
    where
        message_type = 'identify'
        and tags is not null
        and coalesce(has_analytics_consent, true)

),

identifies as (

    select
        message_id,
        user_key,
        user_id,
        occurred_at,
        received_at
    from {{ ref('int_events_stitched') }}
    where message_type = 'identify'

),

consent as (

    select * from {{ ref('int_user_consent') }}

),

ranked as (

    select
        identifies.user_key,
        identifies.user_id,
        tag_messages.tags,
        tag_messages.tags_source,
        identifies.occurred_at as tagged_at,
        row_number() over (
            partition by identifies.user_key, tag_messages.tags_source
            order by {{ event_order('identifies.', descending=true) }}
        ) as source_rank
    from tag_messages
    inner join identifies
        on tag_messages.message_id = identifies.message_id

),

latest as (

    select * from ranked
    where source_rank = 1

),

unnested as (

    select
        user_key,
        user_id,
        tags_source,
        tagged_at,
        {{ json_array_strings('tags') }} as tag
    from latest

),

final as (

    select distinct
        unnested.user_key,
        unnested.user_id,
        trim(unnested.tag) as tag,
        unnested.tags_source,
        unnested.tagged_at
    from unnested
    left join consent
        on unnested.user_key = consent.user_key
    where
        trim(unnested.tag) <> ''
        and (unnested.tags_source <> 'predictions' or coalesce(consent.has_analytics_consent, true))

)

select * from final
