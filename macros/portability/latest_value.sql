{#-
  Aggregate: the value of the latest row (the largest tuple of order_columns) among the
  rows where value is not null; null when there is none. Order by a unique tuple (for
  events: occurred_at, received_at, message_id) so that the answer is deterministic.
-#}
{% macro latest_value(value, order_columns) -%}
    {{ return(adapter.dispatch('latest_value', 'engagement_warehouse')(value, order_columns)) }}
{%- endmacro %}

{% macro default__latest_value(value, order_columns) -%}
    max_by({{ value }}, struct({{ order_columns | join(', ') }}))
    filter (where {{ value }} is not null)
{%- endmacro %}

{% macro duckdb__latest_value(value, order_columns) -%}
    arg_max({{ value }}, ({{ order_columns | join(', ') }}))
    filter (where {{ value }} is not null)
{%- endmacro %}

{#-
  Aggregate: the value of the latest row (the largest tuple of order_columns), null when
  that row's value is null (latest_value skips such rows). Order by a unique tuple.
-#}
{% macro latest_row_value(value, order_columns) -%}
    {{ return(adapter.dispatch('latest_row_value', 'engagement_warehouse')(value, order_columns)) }}
{%- endmacro %}

{% macro default__latest_row_value(value, order_columns) -%}
    max_by({{ value }}, struct({{ order_columns | join(', ') }}))
{%- endmacro %}

{% macro duckdb__latest_row_value(value, order_columns) -%}
    {#- arg_max skips the rows whose value is null; arg_max_null does not -#}
    arg_max_null({{ value }}, ({{ order_columns | join(', ') }}))
{%- endmacro %}

{#- Aggregate: the value of the earliest row (the smallest tuple of order_columns), null when
    that row's value is null. -#}
{% macro earliest_row_value(value, order_columns) -%}
    {{ return(adapter.dispatch('earliest_row_value', 'engagement_warehouse')(value, order_columns)) }}
{%- endmacro %}

{% macro default__earliest_row_value(value, order_columns) -%}
    min_by({{ value }}, struct({{ order_columns | join(', ') }}))
{%- endmacro %}

{% macro duckdb__earliest_row_value(value, order_columns) -%}
    arg_min_null({{ value }}, ({{ order_columns | join(', ') }}))
{%- endmacro %}
