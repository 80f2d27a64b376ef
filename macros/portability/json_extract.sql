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


{#-
  Several JSON string fields from one column, parsed once where the engine can:
  returns an array expression whose n-th element (1-based, see list_item) is the value
  at paths[n-1]. DuckDB extracts a list of paths in a single parse; Spark builds an
  array of get_json_object calls. Use this for wide extractions from a big document.
-#}
{% macro json_string_list(column, paths) -%}
    {{ return(adapter.dispatch('json_string_list', 'engagement_warehouse')(column, paths)) }}
{%- endmacro %}

{% macro default__json_string_list(column, paths) -%}
    array(
        {%- for path in paths %}
        get_json_object({{ column }}, '{{ path }}'){% if not loop.last %},{% endif %}
        {%- endfor %}
    )
{%- endmacro %}

{% macro duckdb__json_string_list(column, paths) -%}
    json_extract_string({{ column }}, [
        {%- for path in paths -%}
            '{{ path }}'{% if not loop.last %}, {% endif %}
        {%- endfor -%}
    ])
{%- endmacro %}


{#- The 1-based n-th element of an array expression. -#}
{% macro list_item(array_expression, n) -%}
    {{ return(adapter.dispatch('list_item', 'engagement_warehouse')(array_expression, n)) }}
{%- endmacro %}

{% macro default__list_item(array_expression, n) -%}
    element_at({{ array_expression }}, {{ n }})
{%- endmacro %}

{% macro duckdb__list_item(array_expression, n) -%}
    {{ array_expression }}[{{ n }}]
{%- endmacro %}


{#-
  A string expression as double, null when it is not a number (never an error, also
  under Spark's ANSI mode where a plain cast of bad input fails).
-#}
{% macro safe_double(expression) -%}
    {{ return(adapter.dispatch('safe_double', 'engagement_warehouse')(expression)) }}
{%- endmacro %}

{% macro default__safe_double(expression) -%}
    try_cast({{ expression }} as double)
{%- endmacro %}


{#-
  The sum of price x quantity over a JSON array of products (Segment's properties.products),
  a missing quantity counting as 1 and a missing price as 0; null when the array is absent,
  empty or not an array. `path` is the array's JSONPath, e.g. '$.properties.products'.
-#}
{% macro json_products_amount(column, path) -%}
    {{ return(adapter.dispatch('json_products_amount', 'engagement_warehouse')(column, path)) }}
{%- endmacro %}

{% macro default__json_products_amount(column, path) -%}
    aggregate(
        from_json(get_json_object({{ column }}, '{{ path }}'), 'array<struct<price:double,quantity:double>>'),
        cast(null as double),
        (total, product) -> coalesce(total, 0) + coalesce(product.price, 0) * coalesce(product.quantity, 1)
    )
{%- endmacro %}

{% macro duckdb__json_products_amount(column, path) -%}
    list_sum(list_transform(
        json_extract({{ column }}, '{{ path }}[*]'),
        lambda product: coalesce(try_cast(json_extract_string(product, '$.price') as double), 0)
            * coalesce(try_cast(json_extract_string(product, '$.quantity') as double), 1)
    ))
{%- endmacro %}


{#-
  One row per string of a JSON array held as text, as a select-list expression (a table
  function: the other columns repeat for each element). Text that is not an array of
  strings gives no rows, never an error.
-#}
{% macro json_array_strings(column) -%}
    {{ return(adapter.dispatch('json_array_strings', 'engagement_warehouse')(column)) }}
{%- endmacro %}

{% macro default__json_array_strings(column) -%}
    explode(coalesce(from_json({{ column }}, 'array<string>'), array()))
{%- endmacro %}

{% macro duckdb__json_array_strings(column) -%}
    unnest(coalesce(try(from_json({{ column }}, '["VARCHAR"]')), []))
{%- endmacro %}
