{#-
  Always-valid inference for a difference of means (fct_experiment_results): the normal
  mixture confidence sequence (Howard et al. 2021; the asymptotic form of Waudby-Smith et al.
  2023). With n analysed users, standard error se and rho^2 = var experiment_sequential_rho_squared():

    half width = se * sqrt((n rho^2 + 1) / (n rho^2) * (ln(n rho^2 + 1) + 2 ln(1 / alpha)))

  holds at every n at once with probability 1 - alpha, so reading it daily does not inflate
  false positives. Its p-value is the smallest alpha whose sequence excludes 0:

    p = min(1, sqrt(n rho^2 + 1) * exp(-z^2 n rho^2 / (2 (n rho^2 + 1))))
-#}
{% macro sequential_rho_squared() -%}
    {%- set alpha = var('experiment_significance_alpha') -%}
    {%- set tuning = var('experiment_sequential_tuning_users') -%}
    {#- the rho that makes the sequence narrowest at `tuning` users (Howard et al. 2021) -#}
    ((-2.0 * ln({{ alpha }}) + ln(1.0 - 2.0 * ln({{ alpha }}))) / {{ tuning }})
{%- endmacro %}

{% macro sequential_half_width(standard_error, users) -%}
    {%- set rho2 = sequential_rho_squared() -%}
    {%- set alpha = var('experiment_significance_alpha') -%}
    ({{ standard_error }} * sqrt(
        ({{ users }} * {{ rho2 }} + 1.0) / ({{ users }} * {{ rho2 }})
        * (ln({{ users }} * {{ rho2 }} + 1.0) - 2.0 * ln({{ alpha }}))
    ))
{%- endmacro %}

{% macro sequential_p_value(z, users) -%}
    {%- set rho2 = sequential_rho_squared() -%}
    least(1.0, sqrt({{ users }} * {{ rho2 }} + 1.0) * exp(
        -1.0 * ({{ z }}) * ({{ z }}) * {{ users }} * {{ rho2 }} / (2.0 * ({{ users }} * {{ rho2 }} + 1.0))
    ))
{%- endmacro %}
