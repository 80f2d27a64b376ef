{#-
  macro chi_square_p_value against the chi-square survival function (scipy.stats.chi2.sf),
  to 1e-6 absolute, for even and odd degrees of freedom from 1 to 30 (the default max_df);
  and null beyond max_df. Returns one row per value that is off.
-#}
with

reference as (

    select
        0.0 as x,
        1 as df,
        1.0 as expected_p
    union all
    select
        0.5 as x,
        1 as df,
        0.47950012218695337 as expected_p
    union all
    select
        3.84 as x,
        1 as df,
        0.05004352124870519 as expected_p
    union all
    select
        5.99 as x,
        2 as df,
        0.05003662708658629 as expected_p
    union all
    select
        7.0 as x,
        3 as df,
        0.07189777249646509 as expected_p
    union all
    select
        11.07 as x,
        5 as df,
        0.050009618622405425 as expected_p
    union all
    select
        2.0 as x,
        4 as df,
        0.7357588823428847 as expected_p
    union all
    select
        20.0 as x,
        9 as df,
        0.017912404529843298 as expected_p
    union all
    select
        35.0 as x,
        10 as df,
        0.0001248652527830378 as expected_p
    union all
    select
        0.001 as x,
        2 as df,
        0.9995001249791693 as expected_p
    union all
    select
        50.0 as x,
        1 as df,
        1.537459794428033e-12 as expected_p
    union all
    select
        100.0 as x,
        29 as df,
        9.783455552333214e-10 as expected_p
    union all
    select
        0.2 as x,
        30 as df,
        1.0 as expected_p

),

evaluated as (

    select
        x,
        df,
        expected_p,
        {{ chi_square_p_value('x', 'df') }} as actual_p,
        {{ chi_square_p_value('x', 'df + 30') }} as beyond_max_df
    from reference

),

final as (

    select * from evaluated
    where
        actual_p is null
        or abs(actual_p - expected_p) > 0.000001
        or beyond_max_df is not null

)

select * from final
