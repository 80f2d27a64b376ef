{#-
  macro normal_cdf against reference values of the standard normal CDF (to 1e-6; the
  Abramowitz & Stegun 7.1.26 approximation is good to 1.5e-7), and two_sided_p_value.
  Returns one row per value that is off.
-#}
with

reference as (

    select
        0.0 as z,
        0.5 as expected_cdf,
        1.0 as expected_p
    union all
    select
        1.0 as z,
        0.8413447460685429 as expected_cdf,
        0.31731050786291415 as expected_p
    union all
    select
        -1.0 as z,
        0.15865525393145707 as expected_cdf,
        0.31731050786291415 as expected_p
    union all
    select
        1.959964 as z,
        0.9750000009035575 as expected_cdf,
        0.04999999819288492 as expected_p
    union all
    select
        -2.575829 as z,
        0.005000004389240809 as expected_cdf,
        0.010000008778481728 as expected_p
    union all
    select
        0.7302967433402214 as z,
        0.7673955907739292 as expected_cdf,
        0.4652088184521417 as expected_p
    union all
    select
        4.0 as z,
        0.9999683287581669 as expected_cdf,
        0.00006334248366623996 as expected_p

),

evaluated as (

    select
        z,
        expected_cdf,
        expected_p,
        {{ normal_cdf('z') }} as actual_cdf,
        {{ two_sided_p_value('z') }} as actual_p
    from reference

),

final as (

    select * from evaluated
    where
        abs(actual_cdf - expected_cdf) > 0.000001
        or abs(actual_p - expected_p) > 0.000001

)

select * from final
