{#-
  Refresh by changed keys: per-user and per-device models that aggregate events are
  incremental without a load timestamp of their own. Each keeps a watermark row in
  intermediate.incremental_watermarks: the newest int_events_stitched.stitched_at (or, for
  models upstream of stitching, stg_events.loaded_at) it has seen, and the as_of it was built
  at. A run then
    1. deletes (pre-hook) the rows of every key that may have changed since the watermark, and
    2. appends those keys' rows, recomputed from all of their events (the model body), and
    3. records the new watermark (post-hook), in the same transaction.
  A key may have changed when int_events_stitched (re)wrote one of its events since the
  watermark (new, late, re-stitched or backfilled events), or, for a model with as_of windows,
  when an event crossed a window boundary because as_of moved forward. Without a watermark,
  or when as_of moved back, every key is refreshed.

  The stg_events flavour (changed_staged_keys) also refreshes the keys of events that as_of
  newly reveals, and refreshes everything while a backfill runs (a backfill re-stages rows
  without changing their loaded_at).

  Usage in a model (key_column: user_key or device_id; windows: (datepart, amount) pairs):
    {{ config(materialized='incremental', incremental_strategy='append',
              pre_hook="{{ changed_keys_pre_hook('user_key', my_windows()) }}",
              post_hook=changed_keys_post_hooks()) }}
    {%- set refresh = changed_keys('user_key', my_windows()) -%}
    ... where events.user_key in ({{ refresh.keys_sql }})   (only when refresh.filtered)
-#}

{% macro incremental_watermarks_relation() -%}
    {{ return(api.Relation.create(
        database=(target.database if target.type == 'duckdb' else none),
        schema='intermediate',
        identifier='incremental_watermarks'
    )) }}
{%- endmacro %}

{% macro read_incremental_watermark(model_name) -%}
    {#- (watermark, as_of) strings of the model's last run, or none -#}
    {%- if not execute -%}{{ return(none) }}{%- endif -%}
    {%- set relation = incremental_watermarks_relation() -%}
    {%- do run_query('create schema if not exists ' ~ relation.include(identifier=false)) -%}
    {%- do run_query(incremental_watermark_ddl()) -%}
    {%- set rows = run_query(latest_watermark_sql(relation, model_name)).rows -%}
    {%- if rows | length == 1 and rows[0][0] is not none -%}
        {{ return({'seen_through': rows[0][0], 'as_of': rows[0][1]}) }}
    {%- endif -%}
    {{ return(none) }}
{%- endmacro %}

{% macro refresh_run() -%}
    {#- This run against the model's watermark: {filtered, since, previous_as_of, as_of_moved}.
        Filtered (refresh only changed keys) when a watermark exists and as_of did not move
        back; since and previous_as_of are the watermark's timestamps as SQL literals. -#}
    {%- set state = read_incremental_watermark(model.name) if is_incremental() else none -%}
    {%- set as_of_text = as_of_string() -%}
    {%- if state is none or as_of_text < state.as_of[:19] -%}
        {{ return({'filtered': false, 'since': none, 'previous_as_of': none, 'as_of_moved': true}) }}
    {%- endif -%}
    {{ return({
        'filtered': true,
        'since': "cast('" ~ state.seen_through ~ "' as " ~ dbt.type_timestamp() ~ ")",
        'previous_as_of': "cast('" ~ state.as_of ~ "' as " ~ dbt.type_timestamp() ~ ")",
        'as_of_moved': as_of_text != state.as_of[:19],
    }) }}
{%- endmacro %}

{% macro changed_keys(key_column, windows=[]) -%}
    {#- {filtered, keys_sql}: what the model's body reads (partition_refresh.sql) -#}
    {{ return(partitioned_refresh(changed_keys_plan(key_column, windows))) }}
{%- endmacro %}

{% macro changed_keys_plan(key_column, windows=[]) -%}
    {#- {filtered, keys_sql}: keys_sql selects the keys to refresh when filtered -#}
    {#- refs only at parse time (dependencies) and in incremental runs: a unit test supplies
        just the model's own inputs -#}
    {%- if not execute or is_incremental() -%}
        {%- set events = ref('int_events_stitched') -%}
        {%- set links = ref('int_identity_links') -%}
        {%- set identity_map = ref('int_identity_map') -%}
    {%- endif -%}
    {%- set run = refresh_run() -%}
    {%- set filtered, since, previous_as_of = run.filtered, run.since, run.previous_as_of -%}
    {%- set keys_sql -%}
        {%- if filtered -%}
        {%- if key_column == 'user_key' %}
        {%- set stitched_keys -%}
        select user_key from {{ events }}
        where stitched_at > {{ since }}
        -- a re-stitched event leaves its former key: its anonymous id, its own user, or a
        -- user its device linked to (expand_person_keys adds their persons' keys and
        -- members). These also cover every user of a re-sessionized device: each event
        -- naming a user on a device is link evidence for the device's anonymous id.
        union
        select anonymous_id from {{ events }}
        where stitched_at > {{ since }} and anonymous_id is not null
        union
        select user_id from {{ events }}
        where stitched_at > {{ since }} and user_id is not null
        union
        select user_id from {{ links }}
        where anonymous_id in (select anonymous_id from {{ events }} where stitched_at > {{ since }})
        {%- endset -%}
        {{ expand_person_keys(stitched_keys, identity_map) }}
        {%- else %}
        select {{ key_column }} from {{ events }}
        where stitched_at > {{ since }}
        {%- endif %}
        {%- if windows | length > 0 and run.as_of_moved %}
        -- events that left a window as as_of moved forward
        union
        select {{ key_column }} from {{ events }}
        where
            {% for part, amount in windows -%}
            {%- if not loop.first %} or {% endif -%}
            (occurred_at > {{ dbt.dateadd(part, -1 * amount, previous_as_of) }}
            and occurred_at <= {{ dbt.dateadd(part, -1 * amount, as_of()) }})
            {% endfor %}
        {%- endif -%}
        {%- endif -%}
    {%- endset -%}
    {{ return({'filtered': filtered, 'keys_sql': keys_sql}) }}
{%- endmacro %}

{% macro changed_keys_pre_hook(key_column, windows=[]) -%}
    {#- the pre-hook: remove the rows of the keys to refresh (all rows when not filtered) -#}
    {%- if is_incremental() -%}
        {{ refresh_keys_pre_hook(changed_keys_plan(key_column, windows), key_column) }}
    {%- else -%}
        select 1
    {%- endif -%}
{%- endmacro %}

{% macro changed_keys_post_hooks(source_model='int_events_stitched', column='stitched_at') -%}
    {#- the post-hooks (templates): record the watermark this run has seen -#}
    {{ return(adapter.dispatch('watermark_post_hooks', 'engagement_warehouse')(source_model, column)) }}
{%- endmacro %}

{% macro duckdb__watermark_post_hooks(source_model, column) -%}
    {{ return([
        '{{ incremental_watermark_ddl() }}',
        "delete from {{ incremental_watermarks_relation() }} where model_name = '{{ model.name }}'",
        "insert into {{ incremental_watermarks_relation() }} select '{{ model.name }}', "
            ~ "max(" ~ column ~ "), {{ as_of() }} from {{ ref('" ~ source_model ~ "') }}",
        "drop table if exists {{ duckdb_refresh_keys_relation() }}",
    ]) }}
{%- endmacro %}

{% macro changed_staged_keys(key_column) -%}
    {{ return(partitioned_refresh(changed_staged_keys_plan(key_column))) }}
{%- endmacro %}

{% macro changed_staged_keys_plan(key_column) -%}
    {#- changed_keys for models upstream of int_events_stitched, from stg_events.loaded_at.
        key_column: anonymous_id (the anonymous and previous ids of changed events) or
        user_key (as int_events_stitched derives it, plus the former keys of those ids) -#}
    {%- if not execute or is_incremental() -%}
        {%- set events = ref('stg_events') -%}
        {%- if key_column == 'user_key' -%}
            {%- set identity_map = ref('int_identity_map') -%}
            {%- set links = ref('int_identity_links') -%}
        {%- endif -%}
    {%- endif -%}
    {%- set run = refresh_run() -%}
    {#- a backfill re-stages rows without changing their loaded_at: refresh every key -#}
    {%- set filtered, since, previous_as_of = run.filtered and not backfill_running(), run.since, run.previous_as_of -%}
    {%- set keys_sql -%}
        {%- if filtered -%}
        {%- set changed -%}
            select * from {{ events }}
            where
                occurred_at <= {{ as_of() }}
                and (
                    loaded_at > {{ since }}
                    or occurred_at > {{ previous_as_of }}
                )
        {%- endset -%}
        {%- set changed_ids -%}
            select anonymous_id from ({{ changed }}) as changed where anonymous_id is not null
            union
            select previous_id from ({{ changed }}) as changed where previous_id is not null
        {%- endset -%}
        {{ changed_ids }}
        {%- if key_column == 'user_key' %}
        {%- set staged_keys -%}
        {{ changed_ids }}
        union
        select user_id from ({{ changed }}) as changed where user_id is not null
        union
        select user_id from {{ links }}
        where anonymous_id in ({{ changed_ids }}) or previous_user_id in ({{ changed_ids }})
        {%- endset %}
        union
        {{ expand_person_keys(staged_keys, identity_map) }}
        {%- endif %}
        {%- endif -%}
    {%- endset -%}
    {{ return({'filtered': filtered, 'keys_sql': keys_sql}) }}
{%- endmacro %}

{% macro changed_staged_keys_pre_hook(key_column) -%}
    {%- if is_incremental() -%}
        {{ refresh_keys_pre_hook(changed_staged_keys_plan(key_column), key_column) }}
    {%- else -%}
        select 1
    {%- endif -%}
{%- endmacro %}

{% macro incremental_watermark_ddl() -%}
    {{ return(adapter.dispatch('incremental_watermark_ddl', 'engagement_warehouse')()) }}
{%- endmacro %}

{% macro duckdb__incremental_watermark_ddl() -%}
    create table if not exists {{ incremental_watermarks_relation() }} (
        model_name {{ dbt.type_string() }},
        seen_through {{ dbt.type_timestamp() }},
        as_of {{ dbt.type_timestamp() }}
    )
{%- endmacro %}

{#- Spark: append-only (no row-level delete on Parquet); a model's watermark is its latest row -#}
{% macro default__incremental_watermark_ddl() -%}
    create table if not exists {{ incremental_watermarks_relation() }} (
        model_name {{ dbt.type_string() }},
        seen_through {{ dbt.type_timestamp() }},
        as_of {{ dbt.type_timestamp() }},
        recorded_at {{ dbt.type_timestamp() }}
    ) using parquet
{%- endmacro %}

{% macro default__watermark_post_hooks(source_model, column) -%}
    {{ return([
        '{{ incremental_watermark_ddl() }}',
        "insert into {{ incremental_watermarks_relation() }} select '{{ model.name }}', "
            ~ "max(" ~ column ~ "), {{ as_of() }}, "
            ~ "{{ run_started_at_literal() }} "
            ~ "from {{ ref('" ~ source_model ~ "') }}",
        "drop table if exists {{ refresh_key_relations()[0] }}",
        "drop table if exists {{ refresh_key_relations()[1] }}",
        "drop table if exists {{ refresh_scratch_relations()[0] }}",
        "drop table if exists {{ refresh_scratch_relations()[1] }}",
    ]) }}
{%- endmacro %}

{% macro run_started_at_literal() -%}
    cast('{{ run_started_at.strftime("%Y-%m-%d %H:%M:%S.%f") }}' as {{ dbt.type_timestamp() }})
{%- endmacro %}

{% macro latest_watermark_sql(relation, model_name) -%}
    {{ return(adapter.dispatch('latest_watermark_sql', 'engagement_warehouse')(relation, model_name)) }}
{%- endmacro %}

{% macro duckdb__latest_watermark_sql(relation, model_name) -%}
    select cast(seen_through as {{ dbt.type_string() }}), cast(as_of as {{ dbt.type_string() }})
    from {{ relation }} where model_name = '{{ model_name }}'
{%- endmacro %}

{% macro default__latest_watermark_sql(relation, model_name) -%}
    select cast(seen_through as {{ dbt.type_string() }}), cast(as_of as {{ dbt.type_string() }})
    from {{ relation }} where model_name = '{{ model_name }}'
    order by recorded_at desc
    limit 1
{%- endmacro %}

{% macro user_activity_windows() -%}
    {#- every as_of window int_user_activity counts over, as (datepart, amount) -#}
    {{ return([
        ('day', 30),
        ('day', 365),
        ('day', var('rfm_window_days')),
        ('hour', var('high_intent_window_hours')),
        ('day', var('browse_abandonment_window_days')),
        ('day', var('engaged_non_converter_open_window_days')),
        ('day', var('engagement_window_days')),
        ('day', var('churn_recent_days')),
        ('day', var('churn_recent_days') + var('churn_baseline_days')),
    ]) }}
{%- endmacro %}

{% macro max_timestamp_literal(relation, column) -%}
    {#- max(column) of relation as a timestamp literal, read when the model runs (1900-01-01
        when empty): a literal, unlike a subquery, lets the scan skip older row groups -#}
    {%- set value = none -%}
    {%- if execute -%}
        {%- set rows = run_query(
            'select cast(max(' ~ column ~ ') as ' ~ dbt.type_string() ~ ') from ' ~ relation
        ).rows -%}
        {%- set value = rows[0][0] if rows | length > 0 else none -%}
    {%- endif -%}
    cast('{{ value if value is not none else "1900-01-01 00:00:00" }}' as {{ dbt.type_timestamp() }})
{%- endmacro %}

{% macro expand_person_keys(keys_sql, identity_map) -%}
    {#- keys_sql (user and anonymous ids, user_keys) widened to whole persons: the user_keys of
        those ids in the identity map, every userId of those persons, and the namespaced key
        of an anonymous id ('anonymous:' + id, see anonymous_user_key). Used as keys (delete)
        and as ids (reading events), so the list holds both. -#}
    select person_key from (
        select raw_keys.raw_key as person_key from ({{ keys_sql }}) as raw_keys (raw_key)
        union
        select {{ dbt.concat(["'anonymous:'", 'raw_keys.raw_key']) }}
        from ({{ keys_sql }}) as raw_keys (raw_key)
        union
        select members.user_id
        from {{ identity_map }} as members
        where members.user_key in (
            select mapped.user_key from {{ identity_map }} as mapped
            where
                mapped.user_id in ({{ keys_sql }})
                or mapped.anonymous_id in ({{ keys_sql }})
                or mapped.user_key in ({{ keys_sql }})
        )
        union
        select mapped.user_key from {{ identity_map }} as mapped
        where
            mapped.user_id in ({{ keys_sql }})
            or mapped.anonymous_id in ({{ keys_sql }})
            or mapped.user_key in ({{ keys_sql }})
    ) as person_keys
{%- endmacro %}

{% macro session_refresh_keys() -%}
    {{ return(partitioned_refresh(session_refresh_keys_plan())) }}
{%- endmacro %}

{% macro session_refresh_keys_plan() -%}
    {#- fct_sessions' refresh: {filtered, keys_sql} over device_id. The devices whose events
        int_events_stitched (re)wrote, and every device with a session of a person whose events
        changed (orders are attributed across the person's sessions). -#}
    {%- if not execute or is_incremental() -%}
        {%- set sessionized = ref('int_sessionized_events') -%}
    {%- endif -%}
    {%- set devices = changed_keys_plan('device_id') -%}
    {%- set persons = changed_keys_plan('user_key') -%}
    {%- set keys_sql -%}
        {%- if devices.filtered -%}
        {{ devices.keys_sql }}
        union
        select device_id from {{ sessionized }}
        where user_key in ({{ persons.keys_sql }})
        {%- endif -%}
    {%- endset -%}
    {{ return({'filtered': devices.filtered, 'keys_sql': keys_sql}) }}
{%- endmacro %}

{% macro session_refresh_pre_hook() -%}
    {%- if is_incremental() -%}
        {{ refresh_keys_pre_hook(session_refresh_keys_plan(), 'device_id') }}
    {%- else -%}
        select 1
    {%- endif -%}
{%- endmacro %}
