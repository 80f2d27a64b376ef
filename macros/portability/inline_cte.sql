{#-
  Written as `name as <inline_cte()> (select ... from one table)`: read the table again at each
  reference instead of materializing the CTE. DuckDB materializes a CTE referenced more than
  once, copying its rows into a buffer; for an import CTE of event rows that copy costs more
  than a second scan, and wide rows spill under the memory limit (10M events, stg_events alone:
  60.6 s and 9.7 GB spilled, inline 32.2 s and 2.9 GB). Spark inlines CTEs itself: nothing.
-#}
{% macro inline_cte(applies=true) -%}
    {#- applies: false keeps DuckDB's choice (a filtered incremental read is small: one copy
        of it is cheaper than filtering the table twice) -#}
    {{ return(adapter.dispatch('inline_cte', 'engagement_warehouse')() if applies else '') }}
{%- endmacro %}

{% macro default__inline_cte() -%}
{%- endmacro %}

{% macro duckdb__inline_cte() -%}
    not materialized
{%- endmacro %}
