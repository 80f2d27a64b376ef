{#-
  RFM over customers: users with analytics consent and at least one order in the last
  var rfm_window_days. Scores are quintiles of the customer population:
    score = 1 + floor(5 * (rank - 1) / customers), ranked from worst to best value,
  where rank() gives tied values the position of the first of them, so a tie always takes
  the lowest score its block reaches (e.g. when 70 % of customers have one order, all of them
  score F = 1). Recency is ranked on whole days since the last order (more days = worse),
  frequency on orders and monetary on revenue in the window (fewer / less = worse).
-#}
with

activity as (

    select * from {{ ref('int_user_activity') }}

),

consent as (

    select * from {{ ref('int_user_consent') }}

),

customers as (

    select
        activity.user_key,
        cast(floor(
            {{ seconds_between('activity.last_order_at', as_of()) }} / 86400
        ) as {{ dbt.type_int() }}) as recency_days,
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
