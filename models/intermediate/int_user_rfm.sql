{#-
  RFM over customers: users with analytics consent and at least one order (int_orders, not
  cancelled) in the last var rfm_window_days (macro in_last: an order exactly that old is
  out). Scores are quintiles of the customer population:
    score = 1 + floor(5 * (rank - 1) / customers), ranked from worst to best value,
  where rank() gives tied values the position of the first of them, so a tie always takes
  the lowest score its block reaches (e.g. when 70 % of customers have one order, all of them
  score F = 1). Recency is ranked on whole days since the last order (more days = worse),
  frequency on orders in the window (an order in an unknown currency is still an order) and
  monetary on net revenue in the window, in the reporting currency (orders in an unknown
  currency left out), in cents (fewer / less = worse).
-#}
with

orders as (

    select * from {{ ref('int_orders') }}
    where not is_cancelled

),

consent as (

    select * from {{ ref('int_user_consent') }}

),

orders_in_window as (

    select
        user_key,
        count(*) as frequency,
        cast(round(coalesce(
            sum(case when has_known_currency then net_revenue_reporting end), 0
        ), 2) as double) as monetary,
        max(ordered_at) as last_order_at
    from orders
    where {{ in_last('ordered_at', 'day', var('rfm_window_days')) }}
    group by user_key

),

customers as (

    select
        orders_in_window.user_key,
        cast(floor(
            {{ seconds_between('orders_in_window.last_order_at', as_of()) }} / 86400
        ) as {{ dbt.type_int() }}) as recency_days,
        orders_in_window.frequency,
        orders_in_window.monetary,
        orders_in_window.last_order_at
    from orders_in_window
    left join consent
        on orders_in_window.user_key = consent.user_key
    where coalesce(consent.has_analytics_consent, true)

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
        cast(1 + floor(5.0 * (recency_rank - 1) / rfm_customers) as {{ dbt.type_int() }}) as recency_score,
        cast(1 + floor(5.0 * (frequency_rank - 1) / rfm_customers) as {{ dbt.type_int() }}) as frequency_score,
        cast(1 + floor(5.0 * (monetary_rank - 1) / rfm_customers) as {{ dbt.type_int() }}) as monetary_score
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
        {{ dbt.concat([
            'cast(recency_score as ' ~ dbt.type_string() ~ ')',
            'cast(frequency_score as ' ~ dbt.type_string() ~ ')',
            'cast(monetary_score as ' ~ dbt.type_string() ~ ')'
        ]) }} as rfm_cell,
        rfm_customers
    from scored

)

select * from final
