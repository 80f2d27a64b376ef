{%- set control = var('experiment_control_variant') -%}
{%- set ci_z = var('experiment_ci_z') -%}

with

exposures as (

    select * from {{ ref('int_events_stitched') }}
    where
        event_type = 'experiment_exposure'
        and experiment_id is not null
        and variation is not null

),

purchases as (

    select * from {{ ref('int_events_stitched') }}
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
        cast(sum(case when orders_after_exposure > 0 then 1 else 0 end) as {{ dbt.type_bigint() }})
            as converted_users,
        cast(sum(orders_after_exposure) as {{ dbt.type_bigint() }}) as orders_after_exposure,
        cast(sum(revenue_after_exposure) as double) as revenue_after_exposure
    from user_outcomes
    group by experiment_id, variant

),

with_totals as (

    select
        *,
        cast(converted_users as double) / exposed_users as conversion_rate,
        cast(sum(exposed_users) over (partition by experiment_id) as {{ dbt.type_bigint() }}) as experiment_users,
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
        rate_difference - {{ ci_z }} * difference_standard_error as ci_lower,
        rate_difference + {{ ci_z }} * difference_standard_error as ci_upper,
        {{ two_sided_p_value('z_score') }} as test_p_value
    from tested

),

final as (

    select
        experiment_id,
        variant,
        variant = '{{ control }}' as is_control,
        exposed_users,
        converted_users,
        orders_after_exposure,
        revenue_after_exposure,
        conversion_rate,
        control_conversion_rate,
        case when variant <> '{{ control }}' then rate_difference end as rate_difference,
        case
            when variant <> '{{ control }}' then rate_difference / nullif(control_conversion_rate, 0)
        end as lift,
        case when variant <> '{{ control }}' then z_score end as z_score,
        case when variant <> '{{ control }}' then test_p_value end as p_value,
        case when variant <> '{{ control }}' then ci_lower end as difference_ci_lower,
        case when variant <> '{{ control }}' then ci_upper end as difference_ci_upper,
        case when variant <> '{{ control }}' then ci_lower / nullif(control_conversion_rate, 0) end as lift_ci_lower,
        case when variant <> '{{ control }}' then ci_upper / nullif(control_conversion_rate, 0) end as lift_ci_upper,
        coalesce(
            variant <> '{{ control }}' and test_p_value < {{ var('experiment_significance_alpha') }},
            false
        ) as is_significant,
        experiment_users,
        cast(exposed_users as double) / experiment_users as exposure_share,
        srm_z_score,
        {{ two_sided_p_value('srm_z_score') }} as srm_p_value,
        coalesce({{ two_sided_p_value('srm_z_score') }} < {{ var('experiment_srm_alpha') }}, false)
            as has_sample_ratio_mismatch
    from bounded

)

select * from final
