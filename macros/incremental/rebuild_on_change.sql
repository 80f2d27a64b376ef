{#-
  Rebuild a table only when what it reads changed. For a model whose every row can depend on
  every input row (a global ranking, say), so that it cannot be refreshed by key, but which is
  costly to rebuild when nothing it reads has changed.

  The model names its inputs as SQL selects of exactly the columns and rows it reads. Each run
  fingerprints them (row count and an order-free sum of row hashes, per input) with the model's
  code and the settings it reads, and rebuilds only when that fingerprint differs from the one
  its last build recorded. Otherwise nothing is written: the table stays as a rebuild would
  leave it, since a rebuild reads the same rows with the same code. New, late, erased or
  re-stitched events, an as_of that reveals or hides events and a changed var all change the
  fingerprint; so does a fingerprint missing (first build, upgrade).

  One decision per run: the body decides while it compiles and writes it into its own SQL as a
  comment; the pre-hook (delete every row before a rebuild) and the post-hook (record the
  fingerprint) read that comment, so they cannot disagree with the body.

  DuckDB only: elsewhere (Spark) the model stays a plain table and always rebuilds.

  Usage:
    {{ config(materialized=rebuild_on_change_materialization(), incremental_strategy='append',
              on_schema_change='append_new_columns',
              pre_hook="{{ rebuild_on_change_pre_hook() }}",
              post_hook="{{ rebuild_on_change_post_hook() }}") }}
    {%- set inputs = {'events': 'select a, b from ' ~ ref('x') ~ ' where ...'} -%}
    {%- set plan = rebuild_on_change(inputs, settings=[var('y')]) -%}
    with events as ({{ inputs.events }}), ... final as (...)
    {{ rebuild_on_change_select('final', plan) }}
-#}

{% macro rebuild_on_change_materialization() -%}
    {{ return('incremental' if target.type == 'duckdb' else 'table') }}
{%- endmacro %}

{% macro incremental_fingerprints_relation() -%}
    {{ return(api.Relation.create(
        database=target.database, schema='intermediate', identifier='incremental_fingerprints'
    )) }}
{%- endmacro %}

{% macro rebuild_on_change(inputs, settings=[]) -%}
    {#- {rebuild, fingerprint}: rebuild is true unless this is an incremental run on DuckDB
        whose inputs' fingerprint equals the recorded one -#}
    {#- only when models run (dbt compile or a linter may find no tables); a dbt unit test's
        inputs are fixtures, not tables: it always builds -#}
    {%- if not execute or target.type != 'duckdb' or model.resource_type != 'model'
        or flags.WHICH not in ['run', 'build', 'retry'] -%}
        {{ return({'rebuild': true, 'fingerprint': none}) }}
    {%- endif -%}
    {%- set parts = [model.name, local_md5(model.raw_code), settings | tojson] -%}
    {%- for name in inputs | sort -%}
        {%- set row = run_query(
            "select count(*), coalesce(sum(hash(input_rows)), 0) from (" ~ inputs[name]
            ~ ") as input_rows"
        ).rows[0] -%}
        {%- do parts.append(name ~ ':' ~ row[0] ~ ':' ~ row[1]) -%}
    {%- endfor -%}
    {%- set fingerprint = local_md5(parts | join('|')) -%}
    {%- set rebuild = true -%}
    {%- if is_incremental() -%}
        {%- set relation = incremental_fingerprints_relation() -%}
        {%- do run_query(incremental_fingerprints_ddl()) -%}
        {%- set recorded = run_query(
            "select fingerprint from " ~ relation ~ " where model_name = '" ~ model.name ~ "'"
        ).rows -%}
        {%- set rebuild = recorded | length != 1 or recorded[0][0] != fingerprint -%}
    {%- endif -%}
    {{ return({'rebuild': rebuild, 'fingerprint': fingerprint}) }}
{%- endmacro %}

{% macro rebuild_on_change_select(final_cte, plan) -%}
    {#- the body's last select, and the decision as a comment the hooks read -#}
    {%- if plan.fingerprint is not none %}
-- inputs fingerprint: {{ plan.fingerprint }}
    {%- endif %}
    {%- if plan.rebuild %}
select * from {{ final_cte }}
    {%- else %}
-- inputs unchanged: no rebuild
select * from {{ this }} where 1 = 0
    {%- endif %}
{%- endmacro %}

{% macro rebuild_on_change_pre_hook() -%}
    {#- before a rebuild of an existing table, remove its rows (the body appends the new ones) -#}
    {%- if is_incremental() and '-- inputs unchanged: no rebuild' not in (compiled_code or '') -%}
        delete from {{ this }}
    {%- else -%}
        select 1
    {%- endif -%}
{%- endmacro %}

{% macro rebuild_on_change_post_hook() -%}
    {#- record the fingerprint the body computed (in the same transaction as its rows) -#}
    {%- set found = modules.re.search('-- inputs fingerprint: ([0-9a-f]{32})', compiled_code or '') -%}
    {%- if target.type == 'duckdb' and found -%}
        {{ incremental_fingerprints_ddl() }};
        delete from {{ incremental_fingerprints_relation() }} where model_name = '{{ model.name }}';
        insert into {{ incremental_fingerprints_relation() }} values ('{{ model.name }}', '{{ found.group(1) }}')
    {%- else -%}
        select 1
    {%- endif -%}
{%- endmacro %}

{% macro incremental_fingerprints_ddl() -%}
    create schema if not exists {{ incremental_fingerprints_relation().include(identifier=false) }};
    create table if not exists {{ incremental_fingerprints_relation() }} (
        model_name {{ dbt.type_string() }},
        fingerprint {{ dbt.type_string() }}
    )
{%- endmacro %}
