{%- set control = var('experiment_control_variant') -%}
{%- set ci_z = var('experiment_ci_z') -%}
{%- set splits = var('experiment_splits', {}) or {} -%}
{%- set window_days = var('experiment_conversion_window_days', none) -%}
{%- set max_variants = var('experiment_max_variants') -%}
{%- set lookback_days = var('experiment_cuped_lookback_days') -%}
{%- if window_days is not none -%}
    {%- set window_end = dbt.dateadd('day', window_days, 'first_exposed_at') -%}
{%- else -%}
    {%- set window_end = 'cast(null as ' ~ dbt.type_timestamp() ~ ')' -%}
{%- endif -%}

with

exposures as (

    select * from {{ ref('int_events_stitched') }}
    where
        event_type = 'experiment_exposure'
        and experiment_id is not null
        and variation is not null
        -- a variant forced for QA (?variant=) says nothing about the experiment
        and not coalesce(is_forced_exposure, false)

),

all_orders as (

    select * from {{ ref('int_orders') }}

),

orders as (

    select * from all_orders
    where not is_cancelled

),

cancelled_orders as (

    select * from all_orders
    where is_cancelled

),

configured_splits as (

    -- var experiment_splits: experiment_id -> {variant: weight}
    select
        cast(null as {{ dbt.type_string() }}) as experiment_id,
        cast(null as {{ dbt.type_string() }}) as variant,
        cast(null as double) as weight
    where 1 = 0
    {%- for experiment_id, weights in splits.items() %}
    {%- for variant, weight in weights.items() %}
    union all
    select
        cast('{{ experiment_id }}' as {{ dbt.type_string() }}) as experiment_id,
        cast('{{ variant }}' as {{ dbt.type_string() }}) as variant,
        cast({{ weight }} as double) as weight
    {%- endfor %}
    {%- endfor %}

),

user_exposures as (

    select
        experiment_id,
        user_key,
        min(occurred_at) as first_exposed_at,
        count(distinct variation) as variants_seen,
        min(variation) as variant
    from exposures
    group by experiment_id, user_key

),

multi_variant as (

    -- users exposed to more than one variant: left out of the analysis, counted here
    select
        experiment_id,
        count(*) as multi_variant_users
    from user_exposures
    where variants_seen > 1
    group by experiment_id

),

analysed_users as (

    -- the conversion window ends var experiment_conversion_window_days after the first
    -- exposure (null: no end but as_of)
    select
        *,
        {{ window_end }} as window_ends_at
    from user_exposures
    where variants_seen = 1

),

in_window as (

    -- orders in the conversion window: from the first exposure (inclusive), before
    -- var experiment_conversion_window_days after it when set, up to as_of; each order once
    select
        analysed_users.experiment_id,
        analysed_users.user_key,
        count(orders.order_id) as orders_in_window,
        sum(case when orders.has_known_currency then orders.net_revenue_reporting end) as revenue_in_window
    from analysed_users
    inner join orders
        on
            analysed_users.user_key = orders.user_key
            and analysed_users.first_exposed_at <= orders.ordered_at
            and (analysed_users.window_ends_at is null or analysed_users.window_ends_at > orders.ordered_at)
    group by analysed_users.experiment_id, analysed_users.user_key

),

cancelled_in_window as (

    -- guardrail: users with a cancelled order in the same window
    select distinct
        analysed_users.experiment_id,
        analysed_users.user_key
    from analysed_users
    inner join cancelled_orders
        on
            analysed_users.user_key = cancelled_orders.user_key
            and analysed_users.first_exposed_at <= cancelled_orders.ordered_at
            and (
                analysed_users.window_ends_at is null
                or analysed_users.window_ends_at > cancelled_orders.ordered_at
            )

),

pre_exposure as (

    -- the CUPED covariate: orders in the var experiment_cuped_lookback_days days before the
    -- first exposure (unaffected by the variant, correlated with buying again)
    select
        analysed_users.experiment_id,
        analysed_users.user_key,
        count(orders.order_id) as pre_exposure_orders
    from analysed_users
    inner join orders
        on
            analysed_users.user_key = orders.user_key
            and analysed_users.first_exposed_at > orders.ordered_at
            and {{ dbt.dateadd('day', -lookback_days, 'analysed_users.first_exposed_at') }} <= orders.ordered_at
    group by analysed_users.experiment_id, analysed_users.user_key

),

user_outcomes as (

    select
        analysed_users.experiment_id,
        analysed_users.variant,
        analysed_users.user_key,
        coalesce(in_window.orders_in_window, 0) as orders_in_window,
        in_window.revenue_in_window,
        cast(case when coalesce(in_window.orders_in_window, 0) > 0 then 1 else 0 end as double)
            as converted,
        coalesce(in_window.revenue_in_window, 0.0) as revenue,
        cast(case when cancelled_in_window.user_key is not null then 1 else 0 end as double)
            as cancelled,
        cast(coalesce(pre_exposure.pre_exposure_orders, 0) as double) as covariate
    from analysed_users
    left join in_window
        on
            analysed_users.experiment_id = in_window.experiment_id
            and analysed_users.user_key = in_window.user_key
    left join cancelled_in_window
        on
            analysed_users.experiment_id = cancelled_in_window.experiment_id
            and analysed_users.user_key = cancelled_in_window.user_key
    left join pre_exposure
        on
            analysed_users.experiment_id = pre_exposure.experiment_id
            and analysed_users.user_key = pre_exposure.user_key

),

cuped_theta as (

    -- CUPED: theta = cov(converted, covariate) / var(covariate) over the experiment's
    -- analysed users (0 when the covariate does not vary)
    select
        experiment_id,
        avg(covariate) as covariate_mean,
        coalesce(covar_samp(converted, covariate) / nullif(var_samp(covariate), 0), 0.0) as theta
    from user_outcomes
    group by experiment_id

),

adjusted as (

    select
        user_outcomes.*,
        cuped_theta.theta,
        user_outcomes.converted
        - cuped_theta.theta * (user_outcomes.covariate - cuped_theta.covariate_mean) as converted_cuped
    from user_outcomes
    inner join cuped_theta
        on user_outcomes.experiment_id = cuped_theta.experiment_id

),

variant_moments as (

    -- per variant: means and sample variances of the CUPED-adjusted conversion and the
    -- guardrails (population variance for a single user: 0)
    select
        experiment_id,
        variant,
        max(theta) as cuped_theta,
        avg(converted_cuped) as cuped_mean,
        coalesce(var_samp(converted_cuped), 0.0) as cuped_variance,
        avg(revenue) as revenue_per_user,
        coalesce(var_samp(revenue), 0.0) as revenue_variance,
        avg(cancelled) as cancelled_order_rate,
        coalesce(var_samp(cancelled), 0.0) as cancelled_variance
    from adjusted
    group by experiment_id, variant

),

variants as (

    select
        experiment_id,
        variant,
        count(*) as exposed_users,
        cast(sum(case when orders_in_window > 0 then 1 else 0 end) as {{ dbt.type_bigint() }})
            as converted_users,
        cast(sum(orders_in_window) as {{ dbt.type_bigint() }}) as orders_in_window,
        cast(round(coalesce(sum(revenue_in_window), 0), 2) as double) as revenue_in_window
    from user_outcomes
    group by experiment_id, variant

),

configured_experiments as (

    select distinct experiment_id from configured_splits

),

all_arms as (

    -- the arms of the sample-ratio test: the configured variants of a configured experiment
    -- (weight 0 for a variant seen but not configured), else every variant seen, weight 1
    select
        coalesce(variants.experiment_id, configured_splits.experiment_id) as experiment_id,
        coalesce(variants.variant, configured_splits.variant) as variant,
        coalesce(variants.exposed_users, 0) as observed_users,
        case
            when configured_splits.weight is not null then configured_splits.weight
            when configured_experiments.experiment_id is not null then 0.0
            else 1.0
        end as weight
    from variants
    full outer join configured_splits
        on
            variants.experiment_id = configured_splits.experiment_id
            and variants.variant = configured_splits.variant
    left join configured_experiments
        on variants.experiment_id = configured_experiments.experiment_id

),

observed_experiments as (

    select distinct experiment_id from variants

),

arms as (

    -- only experiments with exposures
    select * from all_arms
    where experiment_id in (select observed_experiments.experiment_id from observed_experiments)

),

arm_shares as (

    select
        *,
        sum(observed_users) over (partition by experiment_id) as experiment_users,
        weight / nullif(sum(weight) over (partition by experiment_id), 0) as expected_share
    from arms

),

arm_expectations as (

    select
        *,
        experiment_users * expected_share as expected_users
    from arm_shares

),

srm as (

    -- one chi-square test per experiment over all its arms, against the configured split
    -- (default equal): sum (observed - expected)^2 / expected, k - 1 degrees of freedom
    select
        experiment_id,
        max(experiment_users) as experiment_users,
        sum(case when expected_share > 0 then 1 else 0 end) - 1 as srm_degrees_of_freedom,
        sum(case
            when expected_users > 0
                then (observed_users - expected_users) * (observed_users - expected_users) / expected_users
            else 0.0
        end) as srm_chi_square,
        -- users in an arm the split gives no share: a mismatch whatever the statistic
        sum(case when coalesce(expected_share, 0) = 0 then observed_users else 0 end)
            as unexpected_arm_users
    from arm_expectations
    group by experiment_id

),

srm_tested as (

    select
        *,
        case
            when unexpected_arm_users > 0 then 0.0
            when experiment_users > 0 and srm_degrees_of_freedom >= 1
                then {{ chi_square_p_value('srm_chi_square', 'srm_degrees_of_freedom', max_variants - 1) }}
        end as srm_p_value
    from srm

),

with_rates as (

    select
        variants.*,
        cast(variants.converted_users as double) / variants.exposed_users as conversion_rate,
        -- the variance of the log of the rate (delta method): 1/x - 1/n
        case
            when variants.converted_users > 0
                then 1.0 / variants.converted_users - 1.0 / variants.exposed_users
        end as log_rate_variance,
        arm_expectations.expected_share,
        variant_moments.cuped_theta,
        variant_moments.cuped_mean,
        variant_moments.cuped_variance,
        variant_moments.revenue_per_user,
        variant_moments.revenue_variance,
        variant_moments.cancelled_order_rate,
        variant_moments.cancelled_variance
    from variants
    left join variant_moments
        on
            variants.experiment_id = variant_moments.experiment_id
            and variants.variant = variant_moments.variant
    left join arm_expectations
        on
            variants.experiment_id = arm_expectations.experiment_id
            and variants.variant = arm_expectations.variant

),

compared as (

    select
        with_rates.*,
        control.exposed_users as control_exposed_users,
        control.converted_users as control_converted_users,
        control.conversion_rate as control_conversion_rate,
        control.log_rate_variance as control_log_rate_variance,
        with_rates.cuped_mean - control.cuped_mean as cuped_difference,
        sqrt(
            with_rates.cuped_variance / with_rates.exposed_users
            + control.cuped_variance / control.exposed_users
        ) as cuped_standard_error,
        with_rates.revenue_per_user - control.revenue_per_user as revenue_difference,
        sqrt(
            with_rates.revenue_variance / with_rates.exposed_users
            + control.revenue_variance / control.exposed_users
        ) as revenue_standard_error,
        with_rates.cancelled_order_rate - control.cancelled_order_rate as cancelled_difference,
        sqrt(
            with_rates.cancelled_variance / with_rates.exposed_users
            + control.cancelled_variance / control.exposed_users
        ) as cancelled_standard_error,
        with_rates.exposed_users + control.exposed_users as compared_users,
        cast(with_rates.converted_users + control.converted_users as double)
        / (with_rates.exposed_users + control.exposed_users) as pooled_rate
    from with_rates
    left join with_rates as control
        on
            with_rates.experiment_id = control.experiment_id
            and control.variant = '{{ control }}'

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
        -- unpooled standard error of the difference, for its confidence interval
        sqrt(
            conversion_rate * (1 - conversion_rate) / exposed_users
            + control_conversion_rate * (1 - control_conversion_rate) / control_exposed_users
        ) as difference_standard_error,
        -- the rate ratio and the standard error of its log (delta method, both rates
        -- uncertain): sqrt(1/x - 1/n + 1/x_control - 1/n_control); null without conversions
        case
            when converted_users > 0 and control_converted_users > 0
                then cast(conversion_rate as double) / control_conversion_rate
        end as rate_ratio,
        sqrt(log_rate_variance + control_log_rate_variance) as log_ratio_standard_error
    from compared

),

bounded as (

    select
        *,
        rate_difference - {{ ci_z }} * difference_standard_error as ci_lower,
        rate_difference + {{ ci_z }} * difference_standard_error as ci_upper,
        exp(ln(rate_ratio) - {{ ci_z }} * log_ratio_standard_error) - 1 as lift_lower,
        exp(ln(rate_ratio) + {{ ci_z }} * log_ratio_standard_error) - 1 as lift_upper,
        {{ two_sided_p_value('z_score') }} as test_p_value,
        {{ sequential_half_width('cuped_standard_error', 'compared_users') }} as cuped_half_width,
        {{ sequential_p_value('cuped_difference / nullif(cuped_standard_error, 0)', 'compared_users') }}
            as cuped_sequential_p_value,
        {{ sequential_half_width('revenue_standard_error', 'compared_users') }} as revenue_half_width,
        {{ sequential_half_width('cancelled_standard_error', 'compared_users') }} as cancelled_half_width
    from tested

),

final as (

    select
        bounded.experiment_id,
        bounded.variant,
        bounded.variant = '{{ control }}' as is_control,
        bounded.exposed_users,
        bounded.converted_users,
        bounded.orders_in_window,
        bounded.revenue_in_window,
        bounded.conversion_rate,
        bounded.control_conversion_rate,
        case when bounded.variant <> '{{ control }}' then bounded.rate_difference end as rate_difference,
        case
            when bounded.variant <> '{{ control }}'
                then bounded.rate_difference / nullif(bounded.control_conversion_rate, 0)
        end as lift,
        case when bounded.variant <> '{{ control }}' then bounded.z_score end as z_score,
        case when bounded.variant <> '{{ control }}' then bounded.test_p_value end as p_value,
        case when bounded.variant <> '{{ control }}' then bounded.ci_lower end as difference_ci_lower,
        case when bounded.variant <> '{{ control }}' then bounded.ci_upper end as difference_ci_upper,
        case when bounded.variant <> '{{ control }}' then bounded.lift_lower end as lift_ci_lower,
        case when bounded.variant <> '{{ control }}' then bounded.lift_upper end as lift_ci_upper,
        coalesce(
            bounded.variant <> '{{ control }}' and bounded.test_p_value < {{ var('experiment_significance_alpha') }},
            false
        ) as is_significant,
        cast(srm_tested.experiment_users as {{ dbt.type_bigint() }}) as experiment_users,
        cast(coalesce(multi_variant.multi_variant_users, 0) as {{ dbt.type_bigint() }}) as multi_variant_users,
        cast(bounded.exposed_users as double) / srm_tested.experiment_users as exposure_share,
        bounded.expected_share,
        srm_tested.srm_chi_square,
        cast(srm_tested.srm_degrees_of_freedom as {{ dbt.type_int() }}) as srm_degrees_of_freedom,
        srm_tested.srm_p_value,
        coalesce(srm_tested.srm_p_value < {{ var('experiment_srm_alpha') }}, false) as has_sample_ratio_mismatch,
        bounded.cuped_theta,
        case when bounded.variant <> '{{ control }}' then bounded.cuped_difference end as cuped_rate_difference,
        case when bounded.variant <> '{{ control }}' then bounded.cuped_standard_error end as cuped_standard_error,
        case
            when bounded.variant <> '{{ control }}' then bounded.cuped_difference - bounded.cuped_half_width
        end as sequential_ci_lower,
        case
            when bounded.variant <> '{{ control }}' then bounded.cuped_difference + bounded.cuped_half_width
        end as sequential_ci_upper,
        case
            when bounded.variant <> '{{ control }}' and bounded.cuped_standard_error > 0
                then bounded.cuped_sequential_p_value
        end as sequential_p_value,
        coalesce(
            bounded.variant <> '{{ control }}'
            and bounded.cuped_standard_error > 0
            and bounded.cuped_sequential_p_value < {{ var('experiment_significance_alpha') }},
            false
        ) as is_sequential_winner,
        -- money in whole cents, as everywhere; the interval rounded outwards
        round(bounded.revenue_per_user, 2) as revenue_per_user,
        case
            when bounded.variant <> '{{ control }}'
                then cast(floor((bounded.revenue_difference - bounded.revenue_half_width) * 100) as double)
                    / 100
        end as revenue_difference_ci_lower,
        case
            when bounded.variant <> '{{ control }}'
                then cast(ceil((bounded.revenue_difference + bounded.revenue_half_width) * 100) as double)
                    / 100
        end as revenue_difference_ci_upper,
        bounded.cancelled_order_rate,
        case
            when bounded.variant <> '{{ control }}' then bounded.cancelled_difference - bounded.cancelled_half_width
        end as cancelled_difference_ci_lower,
        case
            when bounded.variant <> '{{ control }}' then bounded.cancelled_difference + bounded.cancelled_half_width
        end as cancelled_difference_ci_upper,
        -- a guardrail is breached when the always-valid interval shows harm for sure:
        -- revenue per user lower, or the cancelled-order rate higher, than the control's
        coalesce(
            bounded.variant <> '{{ control }}'
            and (
                bounded.revenue_difference + bounded.revenue_half_width < 0
                or bounded.cancelled_difference - bounded.cancelled_half_width > 0
            ),
            false
        ) as is_guardrail_breached
    from bounded
    left join srm_tested
        on bounded.experiment_id = srm_tested.experiment_id
    left join multi_variant
        on bounded.experiment_id = multi_variant.experiment_id

)

select * from final
