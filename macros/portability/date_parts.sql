{#-
  Calendar parts of a UTC timestamp, portable across engines.
  hour_of_day: 0-23. iso_day_of_week: 1 = Monday ... 7 = Sunday (ISO 8601).
-#}
{% macro hour_of_day(ts) -%}
    {{ return(adapter.dispatch('hour_of_day', 'engagement_warehouse')(ts)) }}
{%- endmacro %}

{% macro default__hour_of_day(ts) -%}
    hour({{ ts }})
{%- endmacro %}

{% macro duckdb__hour_of_day(ts) -%}
    hour({{ ts }})
{%- endmacro %}


{% macro iso_day_of_week(ts) -%}
    {{ return(adapter.dispatch('iso_day_of_week', 'engagement_warehouse')(ts)) }}
{%- endmacro %}

{#- Spark: weekday() is 0 = Monday ... 6 = Sunday. -#}
{% macro default__iso_day_of_week(ts) -%}
    (weekday({{ ts }}) + 1)
{%- endmacro %}

{% macro duckdb__iso_day_of_week(ts) -%}
    isodow({{ ts }})
{%- endmacro %}
