{#-
  A condition that is always true, for the WHERE clause of a CTE that later CTEs read many
  times (the label propagation rounds of int_identity_map). Spark inlines every deterministic
  CTE into each place that reads it, so a chain of rounds that each read the previous round
  several times grows exponentially (it ran out of memory while planning); a non-deterministic
  condition keeps the CTE shared. DuckDB decides by itself: there it is plain `true`.
-#}
{% macro shared_cte_condition() -%}
    {{ return(adapter.dispatch('shared_cte_condition', 'engagement_warehouse')()) }}
{%- endmacro %}

{% macro default__shared_cte_condition() -%}
    rand() >= 0
{%- endmacro %}

{% macro duckdb__shared_cte_condition() -%}
    true
{%- endmacro %}
