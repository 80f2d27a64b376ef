{#-
  The standard normal CDF, Phi(z), in portable SQL (only abs, exp and arithmetic).
  erf(x) is the Abramowitz & Stegun 7.1.26 approximation (|error| <= 1.5e-7):
    t = 1 / (1 + p x),  erf(x) = 1 - (a1 t + a2 t^2 + a3 t^3 + a4 t^4 + a5 t^5) exp(-x^2),  x >= 0
  and Phi(z) = (1 + sign(z) erf(|z| / sqrt 2)) / 2. Null in, null out.
-#}
{% macro normal_cdf(z) -%}
    {%- set x = '(abs(' ~ z ~ ') / 1.4142135623730951)' -%}
    {%- set t = '(1.0 / (1.0 + 0.3275911 * ' ~ x ~ '))' -%}
    (0.5 * (1.0 + (case when ({{ z }}) < 0 then -1.0 else 1.0 end) * (
        1.0 - (
            ((((1.061405429 * {{ t }} - 1.453152027) * {{ t }} + 1.421413741) * {{ t }}
                - 0.284496736) * {{ t }} + 0.254829592) * {{ t }}
        ) * exp(-1.0 * {{ x }} * {{ x }})
    )))
{%- endmacro %}

{#- Two-sided p-value of a z statistic: 2 (1 - Phi(|z|)). -#}
{% macro two_sided_p_value(z) -%}
    (2.0 * (1.0 - {{ normal_cdf('abs(' ~ z ~ ')') }}))
{%- endmacro %}
