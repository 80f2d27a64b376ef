{#-
  The raw layer as dbt sources on the target engine, run at the start of every invocation
  (on-run-start). DuckDB: the loader's tables are in the warehouse already, nothing to do.
  Spark: raw.events is the Parquet lake the loader publishes (setting EWH_LAKE_DIR,
  ewh/ingest/lake.py), an external table partitioned by load_date whose new partitions and
  files are picked up here. Its timestamps are UTC instants, read as TIMESTAMP.
  raw.prediction_scores: a Parquet table in the lake's raw/prediction_scores folder.
-#}
{% macro register_raw_layer() -%}
    {{ return(adapter.dispatch('register_raw_layer', 'engagement_warehouse')()) }}
{%- endmacro %}

{% macro default__register_raw_layer() -%}
    {%- if execute -%}
        {%- set lake = env_var('EWH_LAKE_DIR', '') -%}
        {%- if lake == '' -%}
            {{ exceptions.raise_compiler_error(
                'the spark target reads the raw layer from the Parquet lake: set EWH_LAKE_DIR '
                ~ '(the folder `ewh load` publishes to, docs/spark.md)') }}
        {%- endif -%}
        {%- do run_query('create schema if not exists raw') -%}
        {%- do run_query(
            'create table if not exists raw.events ('
            ~ 'message_id string, message_type string, event_name string, user_id string, '
            ~ 'anonymous_id string, occurred_at timestamp, sent_at timestamp, '
            ~ 'received_at timestamp, payload string, source string, file_checksum string, '
            ~ 'load_id string, loaded_at timestamp, load_date date) '
            ~ "using parquet partitioned by (load_date) location '" ~ lake ~ "/raw/events'"
        ) -%}
        {%- do run_query('alter table raw.events recover partitions') -%}
        {%- do run_query('refresh table raw.events') -%}
        {#- the predictions' scores (ewh.predictions.scoring writes them to DuckDB only: on Spark
            this table is empty unless Parquet files are put in its folder) -#}
        {%- do run_query(
            'create table if not exists raw.prediction_scores ('
            ~ 'user_key string, user_id string, model_name string, model_version string, '
            ~ 'score double, top_features string, as_of timestamp, feature_version string, '
            ~ 'scored_at timestamp) '
            ~ "using parquet location '" ~ lake ~ "/raw/prediction_scores'"
        ) -%}
        {%- do run_query('refresh table raw.prediction_scores') -%}
    {%- endif -%}
    select 1
{%- endmacro %}

{% macro duckdb__register_raw_layer() -%}
    select 1
{%- endmacro %}
