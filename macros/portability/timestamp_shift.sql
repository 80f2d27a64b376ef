{#-
  ts + (to_ts - from_ts), exact to the microsecond.
  Segment's skew correction is timestamp_shift(timestamp, sent_at, received_at).
-#}
{% macro timestamp_shift(ts, from_ts, to_ts) -%}
    {{ return(adapter.dispatch('timestamp_shift', 'engagement_warehouse')(ts, from_ts, to_ts)) }}
{%- endmacro %}

{% macro default__timestamp_shift(ts, from_ts, to_ts) -%}
    timestamp_micros(unix_micros({{ ts }}) + unix_micros({{ to_ts }}) - unix_micros({{ from_ts }}))
{%- endmacro %}

{% macro duckdb__timestamp_shift(ts, from_ts, to_ts) -%}
    make_timestamp(epoch_us({{ ts }}) + epoch_us({{ to_ts }}) - epoch_us({{ from_ts }}))
{%- endmacro %}
