-- Each experiment's variants against the control: conversion, lift and its 95% interval.
with

results as (

    select * from {{ ref('fct_experiment_results') }}

),

final as (

    select
        experiment_id,
        variant,
        exposed_users,
        converted_users,
        round(conversion_rate, 4) as conversion_rate,
        round(lift, 4) as lift,
        round(lift_ci_lower, 4) as lift_ci_lower,
        round(lift_ci_upper, 4) as lift_ci_upper,
        p_value,
        is_significant,
        has_sample_ratio_mismatch
    from results

)

select * from final
order by experiment_id, is_control desc, variant
