{#-
  Exact seconds since 1970-01-01 (with the fractional part) for a timestamp.
  Use differences of epoch_seconds for elapsed time: datediff counts boundaries.
-#}
{% macro epoch_seconds(ts) -%}
    {{ return(adapter.dispatch('epoch_seconds', 'engagement_warehouse')(ts)) }}
{%- endmacro %}

{#- Spark: a double, not the DECIMAL that dividing by 1000000.0 gives there. -#}
{% macro default__epoch_seconds(ts) -%}
    (cast(unix_micros({{ ts }}) as double) / 1000000)
{%- endmacro %}

{% macro duckdb__epoch_seconds(ts) -%}
    (epoch_us({{ ts }}) / 1000000.0)
{%- endmacro %}


{#-
  Exact elapsed seconds from start_ts to end_ts (fractional, microsecond-exact):
  the microsecond difference is taken in integers before dividing.
-#}
{% macro seconds_between(start_ts, end_ts) -%}
    {{ return(adapter.dispatch('seconds_between', 'engagement_warehouse')(start_ts, end_ts)) }}
{%- endmacro %}

{% macro default__seconds_between(start_ts, end_ts) -%}
    (cast(unix_micros({{ end_ts }}) - unix_micros({{ start_ts }}) as double) / 1000000)
{%- endmacro %}

{% macro duckdb__seconds_between(start_ts, end_ts) -%}
    ((epoch_us({{ end_ts }}) - epoch_us({{ start_ts }})) / 1000000.0)
{%- endmacro %}
