{#-
  Portable JSON extraction. `path` is a JSONPath such as '$.properties.price';
  DuckDB and Spark both accept that syntax, so only the function name differs.
-#}

{% macro json_string(column, path) -%}
    {{ return(adapter.dispatch('json_string', 'engagement_warehouse')(column, path)) }}
{%- endmacro %}

{% macro default__json_string(column, path) -%}
    get_json_object({{ column }}, '{{ path }}')
{%- endmacro %}

{% macro duckdb__json_string(column, path) -%}
    json_extract_string({{ column }}, '{{ path }}')
{%- endmacro %}


{% macro json_number(column, path) -%}
    {{ return(adapter.dispatch('json_number', 'engagement_warehouse')(column, path)) }}
{%- endmacro %}

{% macro default__json_number(column, path) -%}
    try_cast(get_json_object({{ column }}, '{{ path }}') as double)
{%- endmacro %}

{% macro duckdb__json_number(column, path) -%}
    try_cast(json_extract_string({{ column }}, '{{ path }}') as double)
{%- endmacro %}
