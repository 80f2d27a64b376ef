{#-
  backfill_window_condition(column, pad_days=0): a SQL condition selecting rows whose
  `column` falls in the backfill window [var backfill_start - pad_days, var backfill_end +
  pad_days), or `false` when no backfill is running. The daily-partitioned `backfill_events`
  Dagster job sets both vars to one day, so an incremental run re-stages and re-stitches that
  day's events (and re-sessionizes the devices they touch) without a full refresh.
  Arguments:
    column: a timestamp column or expression.
    pad_days: days added on both sides (for raw client times, before skew correction).
-#}
{% macro backfill_window_condition(column, pad_days=0) -%}
    {%- if backfill_running() -%}
        {%- set start, end = var('backfill_start'), var('backfill_end') -%}
        {%- set start_at = "cast('" ~ start ~ "' as " ~ dbt.type_timestamp() ~ ")" -%}
        {%- set end_at = "cast('" ~ end ~ "' as " ~ dbt.type_timestamp() ~ ")" -%}
        ({{ column }} >= {{ dbt.dateadd('day', -pad_days, start_at) }}
        and {{ column }} < {{ dbt.dateadd('day', pad_days, end_at) }})
    {%- else -%}
        false
    {%- endif -%}
{%- endmacro %}


{#-
  backfill_running(): whether this run is a backfill (both vars backfill_start and
  backfill_end set). A backfill re-stages rows without changing their loaded_at, so what
  finds changed rows by load time (int_events_stitched's keying, changed_staged_keys_plan)
  takes every row or key instead.
-#}
{% macro backfill_running() -%}
    {{ return(true if (var('backfill_start', none) and var('backfill_end', none)) else false) }}
{%- endmacro %}
