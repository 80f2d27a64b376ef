{#-
  Aggregate: a text key of the group's values, sorted, comma-separated: two groups get the
  same key exactly when they hold the same values (the values must not contain a comma).
  For grouping rows by the set of values they hold, e.g. users by the products they touched.
-#}
{% macro sorted_set_key(value) -%}
    {{ return(adapter.dispatch('sorted_set_key', 'engagement_warehouse')(value)) }}
{%- endmacro %}

{% macro default__sorted_set_key(value) -%}
    {#- dbt's listagg does not order on Spark -#}
    array_join(array_sort(collect_list(cast({{ value }} as string))), ',')
{%- endmacro %}

{% macro duckdb__sorted_set_key(value) -%}
    string_agg(cast({{ value }} as varchar), ',' order by cast({{ value }} as varchar))
{%- endmacro %}
