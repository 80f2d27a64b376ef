{#-
  How an incremental model writes its refresh, per engine.

  DuckDB keeps row-level writes: the event models replace their rows by message_id
  (delete+insert), and the per-key models delete the rows of the keys to refresh in a pre-hook
  and append them recomputed (incremental_refresh.sql). The pre-hook first stores the keys in
  a temporary table of the model's own connection (<model>__refresh_keys), which the delete
  and the body then read: the keys SQL nests its subqueries (expand_person_keys reads its
  input eight times), and inlined it was planned and run once per copy, in the delete and
  again in the body. At 10M events int_user_consent's copies, beside int_events_stitched on
  the other thread, ran DuckDB out of its memory limit.

  Spark's Parquet tables take no row-level DELETE or MERGE, so there every incremental model is
  partitioned (Spark-only column refresh_partition) and written with insert_overwrite in
  dynamic partition mode (profiles.yml): a run rewrites whole partitions, only those it touches.
    - Per-key models (user_key, device_id, link_key): refresh_partition is a hash bucket of the
      key (var refresh_buckets). A run refreshes every key of the buckets holding a changed key:
      the pre-hook stores those keys (the changed ones, every key already in those buckets, and
      for persons all their ids) in <model>__refresh_keys and the buckets in
      <model>__refresh_buckets, drops the buckets' partitions (a bucket left without keys must
      not keep old rows), and the model recomputes those keys. A run without a usable
      watermark truncates the table and recomputes everything, as DuckDB's delete does.
    - Models that replace rows by a unique key (stg_events and int_events_stitched partitioned
      by load date, int_sessionized_events by event date, segment_membership_history by
      segment): the model's rows are the rows to (re)write, as on DuckDB; the final select adds
      the other rows of the partitions they fall in, read from the table itself, so each
      touched partition is rewritten whole and the others are left alone.
-#}

{% macro refresh_strategy(duckdb_strategy) -%}
    {{ return(adapter.dispatch('refresh_strategy', 'engagement_warehouse')(duckdb_strategy)) }}
{%- endmacro %}

{% macro default__refresh_strategy(duckdb_strategy) -%}
    {{ return('insert_overwrite') }}
{%- endmacro %}

{% macro duckdb__refresh_strategy(duckdb_strategy) -%}
    {{ return(duckdb_strategy) }}
{%- endmacro %}


{% macro refresh_partition_by() -%}
    {{ return(adapter.dispatch('refresh_partition_by', 'engagement_warehouse')()) }}
{%- endmacro %}

{% macro default__refresh_partition_by() -%}
    {{ return(['refresh_partition']) }}
{%- endmacro %}

{% macro duckdb__refresh_partition_by() -%}
    {{ return(none) }}
{%- endmacro %}


{% macro refresh_contract_enforced() -%}
    {#- whether a contracted incremental model's contract is enforced on this engine -#}
    {{ return(adapter.dispatch('refresh_contract_enforced', 'engagement_warehouse')()) }}
{%- endmacro %}

{% macro default__refresh_contract_enforced() -%}
    {#- Spark adds its partition column refresh_partition, which the public contract does not
        name; the columns and values are checked against DuckDB's by the parity suite
        (tests/integration/test_spark_parity.py) -#}
    {{ return(false) }}
{%- endmacro %}

{% macro duckdb__refresh_contract_enforced() -%}
    {{ return(true) }}
{%- endmacro %}


{% macro refresh_bucket(key) -%}
    {#- the hash bucket of a key (Spark), 0 .. var refresh_buckets - 1 -#}
    cast(pmod(xxhash64({{ key }}), {{ var('refresh_buckets') }}) as int)
{%- endmacro %}

{% macro refresh_key_relations() -%}
    {#- (keys, buckets): the tables a Spark refresh of this model keeps its plan in -#}
    {{ return((
        this.incorporate(path={'identifier': this.identifier ~ '__refresh_keys'}),
        this.incorporate(path={'identifier': this.identifier ~ '__refresh_buckets'}),
    )) }}
{%- endmacro %}


{% macro refresh_scratch_relations() -%}
    {#- (changed keys, keys of the touched buckets): a Spark refresh's intermediate steps -#}
    {{ return((
        this.incorporate(path={'identifier': this.identifier ~ '__changed_keys'}),
        this.incorporate(path={'identifier': this.identifier ~ '__bucket_keys'}),
    )) }}
{%- endmacro %}


{#- ---- per-key models ------------------------------------------------------------------- -#}

{% macro partitioned_refresh(refresh) -%}
    {#- the keys a per-key model's body reads: refresh as planned on DuckDB; on Spark the stored
        keys of the touched buckets -#}
    {{ return(adapter.dispatch('partitioned_refresh', 'engagement_warehouse')(refresh)) }}
{%- endmacro %}

{% macro duckdb__partitioned_refresh(refresh) -%}
    {%- if not refresh.filtered -%}{{ return(refresh) }}{%- endif -%}
    {{ return({'filtered': true, 'keys_sql': 'select refresh_key from ' ~ duckdb_refresh_keys_relation()}) }}
{%- endmacro %}

{% macro duckdb_refresh_keys_relation(qualified=true) -%}
    {#- the temporary table a DuckDB refresh keeps its keys in: temporary tables belong to one
        connection, and dbt runs a model's hooks and body on its thread's own connection -#}
    {%- set name = adapter.quote(this.identifier ~ '__refresh_keys') -%}
    {{ return(('temp.main.' ~ name) if qualified else name) }}
{%- endmacro %}

{% macro default__partitioned_refresh(refresh) -%}
    {%- if not refresh.filtered -%}{{ return(refresh) }}{%- endif -%}
    {%- set keys, buckets = refresh_key_relations() -%}
    {{ return({'filtered': true, 'keys_sql': 'select refresh_key from ' ~ keys}) }}
{%- endmacro %}


{% macro refresh_keys_pre_hook(refresh, key_column) -%}
    {#- the pre-hook of a per-key model in an incremental run: remove what is recomputed -#}
    {{ return(adapter.dispatch('refresh_keys_pre_hook', 'engagement_warehouse')(refresh, key_column)) }}
{%- endmacro %}

{% macro duckdb__refresh_keys_pre_hook(refresh, key_column) -%}
    {%- if not refresh.filtered -%}
        delete from {{ this }}
    {%- else -%}
        {%- set keys = duckdb_refresh_keys_relation() -%}
        {%- do run_query(
            'create or replace temporary table ' ~ duckdb_refresh_keys_relation(qualified=false)
            ~ ' as select distinct refresh_key from (' ~ refresh.keys_sql ~ ') as changed (refresh_key)'
            ~ ' where refresh_key is not null'
        ) -%}
        delete from {{ this }} where {{ key_column }} in (select refresh_key from {{ keys }})
    {%- endif -%}
{%- endmacro %}

{% macro default__refresh_keys_pre_hook(refresh, key_column) -%}
    {%- if not refresh.filtered -%}
        truncate table {{ this }}
    {%- else -%}
        {%- set keys, buckets = refresh_key_relations() -%}
        {#- Each step's keys are written to a table before the next reads them: the keys SQL
            nests its subqueries (expand_person_keys reads its input eight times), and Spark
            plans every copy (34 s for int_user_consent on a few thousand events, then 2 s) -#}
        {%- set changed, in_buckets = refresh_scratch_relations() -%}
        {%- do run_query('drop table if exists ' ~ changed) -%}
        {%- do run_query(
            'create table ' ~ changed ~ ' using parquet as select distinct changed_key from ('
            ~ refresh.keys_sql ~ ') as changed (changed_key)'
        ) -%}
        {%- do run_query('drop table if exists ' ~ buckets) -%}
        {%- do run_query(
            'create table ' ~ buckets ~ ' using parquet as select distinct '
            ~ refresh_bucket('changed_key') ~ ' as refresh_bucket from ' ~ changed
        ) -%}
        {%- do run_query('drop table if exists ' ~ in_buckets) -%}
        {%- do run_query(
            'create table ' ~ in_buckets ~ ' using parquet as select changed_key as bucket_key from '
            ~ changed ~ ' union select ' ~ key_column ~ ' from ' ~ this
            ~ ' where refresh_partition in (select refresh_bucket from ' ~ buckets ~ ')'
        ) -%}
        {%- set bucket_keys = 'select bucket_key from ' ~ in_buckets -%}
        {%- if key_column == 'user_key' -%}
            {#- a person's row is computed from all of their ids -#}
            {%- set bucket_keys = expand_person_keys(bucket_keys, ref('int_identity_map')) -%}
        {%- endif -%}
        {%- do run_query('drop table if exists ' ~ keys) -%}
        {%- do run_query(
            'create table ' ~ keys ~ ' using parquet as select distinct refresh_key from ('
            ~ bucket_keys ~ ') as bucket_keys (refresh_key)'
        ) -%}
        {%- set touched = run_query('select refresh_bucket from ' ~ buckets ~ ' order by 1').columns[0].values() -%}
        {%- if touched | length == 0 -%}
            select 1
        {%- else -%}
            alter table {{ this }} drop if exists
            {%- for bucket in touched %} partition (refresh_partition = {{ bucket }}){% if not loop.last %},{% endif %}{% endfor %}
        {%- endif -%}
    {%- endif -%}
{%- endmacro %}


{% macro select_refreshed_keys(refresh, key_column, relation='final') -%}
    {#- a per-key model's last select -#}
    {{ return(adapter.dispatch('select_refreshed_keys', 'engagement_warehouse')(refresh, key_column, relation)) }}
{%- endmacro %}

{% macro duckdb__select_refreshed_keys(refresh, key_column, relation) -%}
    select * from {{ relation }}
{%- endmacro %}

{% macro default__select_refreshed_keys(refresh, key_column, relation) -%}
    select
        *,
        {{ refresh_bucket(key_column) }} as refresh_partition
    from {{ relation }}
    {%- if is_incremental() and refresh.filtered %}
    {%- set keys, buckets = refresh_key_relations() %}
    -- only the touched buckets: their partitions are rewritten whole
    where {{ refresh_bucket(key_column) }} in (select refresh_bucket from {{ buckets }})
    {%- endif %}
{%- endmacro %}


{#- ---- event models -------------------------------------------------------------------- -#}

{% macro select_upserted_rows(unique_key, partition_value, relation='final') -%}
    {#- the last select of a model whose rows replace those of the same unique_key (the event
        models, segment_membership_history); partition_value: the row's Spark partition -#}
    {{ return(adapter.dispatch('select_upserted_rows', 'engagement_warehouse')(unique_key, partition_value, relation)) }}
{%- endmacro %}

{% macro duckdb__select_upserted_rows(unique_key, partition_value, relation) -%}
    select * from {{ relation }}
{%- endmacro %}

{% macro default__select_upserted_rows(unique_key, partition_value, relation) -%}
    select
        *,
        {{ partition_value }} as refresh_partition
    from {{ relation }}
    {%- if is_incremental() %}

    union all

    -- the other rows of every partition the new rows fall in (or move out of)
    select previous.*
    from {{ this }} as previous
    where
        previous.refresh_partition in (
            select {{ partition_value }} from {{ relation }}
            union
            select moved.refresh_partition from {{ this }} as moved
            where moved.{{ unique_key }} in (select {{ unique_key }} from {{ relation }})
        )
        and previous.{{ unique_key }} not in (select {{ unique_key }} from {{ relation }})
    {%- endif %}
{%- endmacro %}


{% macro remove_events_beyond_as_of() -%}
    {#- the pre-hook of the event models: rows of an as_of that moved back are removed -#}
    {{ return(adapter.dispatch('remove_events_beyond_as_of', 'engagement_warehouse')()) }}
{%- endmacro %}

{% macro duckdb__remove_events_beyond_as_of() -%}
    {%- if is_incremental() -%}
        delete from {{ this }} where occurred_at > {{ as_of() }}
    {%- endif -%}
{%- endmacro %}

{% macro default__remove_events_beyond_as_of() -%}
    {#- Spark: moving as_of back needs a full refresh of the event models (a partition holding
        only later events could not be emptied by an overwrite) -#}
    {%- if is_incremental() and execute -%}
        {%- set later = run_query(
            'select count(*) from ' ~ this ~ ' where occurred_at > ' ~ as_of()
        ).columns[0].values()[0] -%}
        {%- if later > 0 -%}
            {{ exceptions.raise_compiler_error(
                this ~ ' holds ' ~ later ~ ' events after as_of ' ~ as_of_string()
                ~ ': as_of moved back, which the spark target refreshes only with --full-refresh') }}
        {%- endif -%}
    {%- endif -%}
    select 1
{%- endmacro %}


{% macro undo_history_beyond_as_of() -%}
    {#- segment_membership_history's pre-hook: when as_of moved back, what the later builds
        recorded is undone (spells entered after as_of removed, exits after it reopened), so
        this build evaluates the segments on the history as it stood at as_of -#}
    {{ return(adapter.dispatch('undo_history_beyond_as_of', 'engagement_warehouse')()) }}
{%- endmacro %}

{% macro duckdb__undo_history_beyond_as_of() -%}
    {%- if is_incremental() -%}
        delete from {{ this }} where entered_at > {{ as_of() }};
        update {{ this }} set exited_at = null, is_current = true
        where exited_at > {{ as_of() }}
    {%- endif -%}
{%- endmacro %}

{% macro default__undo_history_beyond_as_of() -%}
    {#- Spark: a run rewrites only the segment partitions its new rows fall in, so undone
        spells could not all be removed (a partition left without rows is not overwritten);
        stop rather than record exits before entries -#}
    {%- if is_incremental() and execute -%}
        {%- set later = run_query(
            'select count(*) from ' ~ this ~ ' where entered_at > ' ~ as_of()
            ~ ' or exited_at > ' ~ as_of()
        ).columns[0].values()[0] -%}
        {%- if later > 0 -%}
            {{ exceptions.raise_compiler_error(
                this ~ ' holds ' ~ later ~ ' spells entered or exited after as_of ' ~ as_of_string()
                ~ ': as_of moved back, which the spark target cannot undo in the kept history'
                ~ ' (build at a later as_of, or drop the table to restart the history)') }}
        {%- endif -%}
    {%- endif -%}
    select 1
{%- endmacro %}
