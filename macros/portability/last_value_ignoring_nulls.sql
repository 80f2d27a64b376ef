{#-
  The last non-null value of `expression` in a window frame: write
  {{ last_value_ignoring_nulls('x') }} over (...). DuckDB puts IGNORE NULLS inside the call;
  Spark has last(x, true) (it does not parse DuckDB's form).
-#}
{% macro last_value_ignoring_nulls(expression) -%}
    {{ return(adapter.dispatch('last_value_ignoring_nulls', 'engagement_warehouse')(expression)) }}
{%- endmacro %}

{% macro default__last_value_ignoring_nulls(expression) -%}
    last({{ expression }}, true)
{%- endmacro %}

{% macro duckdb__last_value_ignoring_nulls(expression) -%}
    last_value({{ expression }} ignore nulls)
{%- endmacro %}
