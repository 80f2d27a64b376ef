{#-
  The chi-square survival function (upper-tail p-value) P(X >= x) for integer degrees of
  freedom df, in portable SQL (exp, ln, sqrt and arithmetic; the loop is unrolled by Jinja up
  to max_df, so df is a SQL expression evaluated per row). Closed forms of the regularized
  upper incomplete gamma Q(df/2, x/2) for integer df:
    even df = 2m:      Q = sum_{j=0}^{m-1} exp(-x/2 + j ln(x/2) - ln j!)
    odd  df = 2m + 1:  Q = 2 (1 - Phi(sqrt x)) + sqrt(2/pi) sum_{j=1}^{m} exp(-x/2 + (j - 1/2) ln x - ln (2j-1)!!)
  with the factorials as literals.
  Each term is computed in logs, so a large x underflows to 0 instead of overflowing. Even df
  is exact to floating point; odd df inherits normal_cdf's error (|error| <= 3e-7 absolute).
  x <= 0 gives 1; df < 1, df > max_df or a null gives null.
-#}
{% macro chi_square_p_value(x, df, max_df=30) -%}
    {%- set half = '(' ~ x ~ ') / 2.0' -%}
    (case
        when ({{ x }}) is null or ({{ df }}) is null or ({{ df }}) < 1 or ({{ df }}) > {{ max_df }} then null
        when ({{ x }}) <= 0 then 1.0
        when mod(cast({{ df }} as {{ dbt.type_int() }}), 2) = 0 then
            {%- set ns = namespace(factorial=1) %}
            (0.0
            {%- for j in range(0, (max_df // 2)) %}
            {%- if j > 0 %}{% set ns.factorial = ns.factorial * j %}{% endif %}
                + case when ({{ df }}) >= {{ 2 * (j + 1) }}
                    then exp(-1.0 * {{ half }} + {{ j }} * ln({{ half }}) - ln({{ ns.factorial }}.0))
                    else 0.0 end
            {%- endfor %})
        else
            {%- set ns = namespace(double_factorial=1) %}
            ({{ two_sided_p_value('sqrt(' ~ x ~ ')') }}
            {%- for j in range(1, ((max_df - 1) // 2) + 1) %}
            {%- set ns.double_factorial = ns.double_factorial * (2 * j - 1) %}
                + case when ({{ df }}) >= {{ 2 * j + 1 }}
                    then 0.7978845608028654 * exp(
                        -1.0 * {{ half }} + {{ j - 0.5 }} * ln({{ x }}) - ln({{ ns.double_factorial }}.0)
                    )
                    else 0.0 end
            {%- endfor %})
    end)
{%- endmacro %}
