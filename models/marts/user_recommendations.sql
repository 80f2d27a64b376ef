{#-
  Item-to-item recommendations: products that shared sessions with what the user interacted
  with (viewed, added to a cart, bought), ranked by how many sessions they shared, bought
  products left out, with the product that earned each one as evidence.
-#}
{%- set min_sessions = var('recommendation_min_sessions') -%}
{%- set per_user = var('recommendations_per_user') -%}

with

sessionized as (

    select * from {{ ref('int_sessionized_events') }}
    where
        occurred_at <= {{ as_of() }}
        and event_type in ('product_view', 'add_to_cart', 'purchase')

),

staged as (

    select * from {{ ref('stg_events') }}
    where event_type = 'purchase'

),

users as (

    select * from {{ ref('dim_users') }}

),

purchase_products as (

    -- an order names its products in properties.products (each an object with product_id)
    select
        sessionized.message_id,
        {{ json_array_strings(json_string('staged.properties', '$.products')) }} as product_json
    from sessionized
    inner join staged
        on sessionized.message_id = staged.message_id
    where sessionized.event_type = 'purchase'

),

purchased_items as (

    select
        message_id,
        {{ json_string('product_json', '$.product_id') }} as product_id
    from purchase_products

),

interactions as (

    -- views and cart adds name one product; a purchase names its own, or each in its products
    select
        session_id,
        user_key,
        product_id,
        event_type
    from sessionized
    where product_id is not null
    union all
    select
        sessionized.session_id,
        sessionized.user_key,
        purchased_items.product_id,
        sessionized.event_type
    from purchased_items
    inner join sessionized
        on purchased_items.message_id = sessionized.message_id
    where purchased_items.product_id is not null

),

session_products as (

    select distinct
        session_id,
        product_id
    from interactions

),

co_occurrence as (

    -- sessions in which both products appear, for every ordered pair of distinct products
    select
        seen.product_id as seen_product_id,
        other.product_id as co_product_id,
        count(*) as shared_sessions
    from session_products as seen
    inner join session_products as other
        on
            seen.session_id = other.session_id
            and seen.product_id <> other.product_id
    group by seen.product_id, other.product_id
    having count(*) >= {{ min_sessions }}

),

user_products as (

    select
        user_key,
        product_id,
        max(case when event_type = 'purchase' then 1 else 0 end) as is_bought
    from interactions
    group by user_key, product_id

),

candidates as (

    -- each product the user touched votes for its co-occurring products with its sessions
    select
        user_products.user_key,
        co_occurrence.co_product_id as product_id,
        co_occurrence.seen_product_id,
        co_occurrence.shared_sessions
    from user_products
    inner join co_occurrence
        on user_products.product_id = co_occurrence.seen_product_id
    left join user_products as bought
        on
            user_products.user_key = bought.user_key
            and co_occurrence.co_product_id = bought.product_id
            and bought.is_bought = 1
    where bought.product_id is null

),

scored as (

    select
        user_key,
        product_id,
        sum(shared_sessions) as score,
        -- the evidence: the user's product that shared the most sessions (ties: lowest id)
        min(case when evidence_rank = 1 then seen_product_id end) as evidence_product_id,
        max(case when evidence_rank = 1 then shared_sessions end) as evidence_sessions
    from (
        select
            *,
            row_number() over (
                partition by user_key, product_id
                order by shared_sessions desc, seen_product_id asc
            ) as evidence_rank
        from candidates
    ) as ranked_evidence
    group by user_key, product_id

),

ranked as (

    select
        *,
        row_number() over (
            partition by user_key order by score desc, product_id asc
        ) as recommendation_rank
    from scored

),

final as (

    select
        ranked.user_key,
        users.user_id,
        cast(ranked.recommendation_rank as {{ dbt.type_int() }}) as recommendation_rank,
        ranked.product_id,
        cast(ranked.score as {{ dbt.type_bigint() }}) as score,
        ranked.evidence_product_id,
        cast(ranked.evidence_sessions as {{ dbt.type_bigint() }}) as evidence_sessions,
        {{ dbt.concat(["'because you viewed '", 'ranked.evidence_product_id']) }} as evidence
    from ranked
    inner join users
        on ranked.user_key = users.user_key
    where
        ranked.recommendation_rank <= {{ per_user }}
        and users.has_analytics_consent

)

select * from final
