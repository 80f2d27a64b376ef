{#-
  Item-to-item recommendations: products that shared sessions with what the user interacted
  with (viewed, added to a cart, bought), ranked by how many sessions they shared, bought
  products left out, with the product that earned each one as evidence.

  One new session changes the global co-occurrence counts and through them anyone's ranking,
  so the table is rebuilt whole, but only when the rows it reads changed (rebuild_on_change):
  a refresh with nothing new leaves it as it is.
-#}
{{
    config(
        materialized=rebuild_on_change_materialization(),
        incremental_strategy='append',
        on_schema_change='append_new_columns',
        pre_hook="{{ rebuild_on_change_pre_hook() }}",
        post_hook="{{ rebuild_on_change_post_hook() }}"
    )
}}
{%- set min_sessions = var('recommendation_min_sessions') -%}
{%- set per_user = var('recommendations_per_user') -%}
{%- set inputs = {
    'sessionized':
        "select message_id, session_id, user_key, product_id, event_type"
        ~ " from " ~ ref('int_sessionized_events')
        ~ " where occurred_at <= " ~ as_of()
        ~ " and event_type in ('product_view', 'add_to_cart', 'purchase')",
    'staged':
        "select message_id, properties from " ~ ref('stg_events')
        ~ " where event_type = 'purchase'",
    'users':
        "select user_key, user_id, has_analytics_consent from " ~ ref('dim_users'),
} -%}
{%- set plan = rebuild_on_change(inputs, settings=[min_sessions, per_user]) -%}

with

sessionized as (

    {{ inputs.sessionized }}

),

staged as (

    {{ inputs.staged }}

),

users as (

    {{ inputs.users }}

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

products as (

    -- candidates are millions of rows (users x co-occurring products): they are grouped and
    -- ranked on integer keys, numbered here in id order so that ties still break on the id
    select
        product_id,
        row_number() over (order by product_id) as product_number
    from (select distinct product_id from session_products) as distinct_products

),

user_numbers as (

    select
        user_key,
        row_number() over (order by user_key) as user_number
    from (select distinct user_key from interactions) as distinct_users

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

evidence_order as (

    -- per recommended product, its co-occurring products best evidence first (most shared
    -- sessions, ties: lowest id): a user's evidence is then the min of an integer over the
    -- candidates, a hash aggregate where a window would sort every candidate
    select
        seen.product_number as seen_product_number,
        co.product_number as co_product_number,
        co_occurrence.seen_product_id,
        co_occurrence.shared_sessions,
        row_number() over (
            partition by co_occurrence.co_product_id
            order by co_occurrence.shared_sessions desc, co_occurrence.seen_product_id asc
        ) as evidence_rank
    from co_occurrence
    inner join products as seen
        on co_occurrence.seen_product_id = seen.product_id
    inner join products as co
        on co_occurrence.co_product_id = co.product_id

),

user_products as (

    select
        user_numbers.user_number,
        products.product_number,
        max(case when interactions.event_type = 'purchase' then 1 else 0 end) as is_bought
    from interactions
    inner join user_numbers
        on interactions.user_key = user_numbers.user_key
    inner join products
        on interactions.product_id = products.product_id
    group by user_numbers.user_number, products.product_number

),

user_signatures as (

    -- a user's recommendations depend only on which products they touched and which they
    -- bought: users with the same signature are scored once (10M events: 176,750 users,
    -- 13,404 signatures)
    select
        user_number,
        {{ sorted_set_key('product_number * 2 + is_bought') }} as signature
    from user_products
    group by user_number

),

signatures as (

    -- each signature is named by the number of one of its users
    select
        signature,
        min(user_number) as signature_number
    from user_signatures
    group by signature

),

signature_products as (

    select
        signatures.signature_number,
        user_products.product_number,
        user_products.is_bought
    from user_products
    inner join signatures
        on user_products.user_number = signatures.signature_number

),

candidates as (

    -- each product of the signature votes for its co-occurring products with its sessions
    select
        signature_products.signature_number,
        evidence_order.co_product_number as product_number,
        evidence_order.shared_sessions,
        evidence_order.evidence_rank
    from signature_products
    inner join evidence_order
        on signature_products.product_number = evidence_order.seen_product_number
    left join signature_products as bought
        on
            signature_products.signature_number = bought.signature_number
            and evidence_order.co_product_number = bought.product_number
            and bought.is_bought = 1
    where bought.product_number is null

),

scored as (

    select
        signature_number,
        product_number,
        sum(shared_sessions) as score,
        min(evidence_rank) as evidence_rank
    from candidates
    group by signature_number, product_number

),

numbered as (

    select
        *,
        row_number() over (
            partition by signature_number order by score desc, product_number asc
        ) as recommendation_rank
    from scored

),

ranked as (

    select * from numbered
    where recommendation_rank <= {{ per_user }}

),

final as (

    select
        user_numbers.user_key,
        users.user_id,
        cast(ranked.recommendation_rank as {{ dbt.type_int() }}) as recommendation_rank,
        products.product_id,
        cast(ranked.score as {{ dbt.type_bigint() }}) as score,
        -- the evidence: the user's product that shared the most sessions (ties: lowest id)
        evidence_order.seen_product_id as evidence_product_id,
        cast(evidence_order.shared_sessions as {{ dbt.type_bigint() }}) as evidence_sessions,
        {{ dbt.concat(["'because you viewed '", 'evidence_order.seen_product_id']) }} as evidence
    from user_signatures
    inner join signatures
        on user_signatures.signature = signatures.signature
    inner join ranked
        on signatures.signature_number = ranked.signature_number
    inner join user_numbers
        on user_signatures.user_number = user_numbers.user_number
    inner join products
        on ranked.product_number = products.product_number
    inner join evidence_order
        on
            ranked.product_number = evidence_order.co_product_number
            and ranked.evidence_rank = evidence_order.evidence_rank
    inner join users
        on user_numbers.user_key = users.user_key
    where users.has_analytics_consent

)

{{ rebuild_on_change_select('final', plan) }}
