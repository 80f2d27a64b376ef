{#-
  dbt.dateadd on Spark, exact to the microsecond. dbt-spark's own version goes through
  to_unix_timestamp and drops the fraction of a second, so a window bound such as
  as_of - 24 hours would lose the milliseconds of as_of. dbt_project.yml's `dispatch` puts this
  project before dbt in the dbt namespace's search order; DuckDB keeps dbt-duckdb's version.
-#}
{% macro spark__dateadd(datepart, interval, from_date_or_timestamp) -%}
    timestampadd({{ datepart }}, {{ interval }}, {{ from_date_or_timestamp }})
{%- endmacro %}
