{#-
  Every dbt command that runs hooks first replaces the inputs key of the last whole build with
  its own invocation id (on-run-start). `ewh build` skips a build whose inputs (raw tables,
  code, command line) equal the key the last successful `ewh build` recorded
  (ewh/common/build_inputs.py), and records a key only where the row still holds its own
  invocation's id. Any other invocation in between (a `dbt run` of one model, other vars, a
  build that failed, a run that started meanwhile) may have changed the tables, so it leaves no
  key and the next build runs. DuckDB only: on Spark nothing is skipped.
-#}
{% macro forget_build_inputs() -%}
    {%- if target.type == 'duckdb' -%}
        {{ incremental_fingerprints_ddl() }};
        delete from {{ incremental_fingerprints_relation() }} where model_name = '__whole_build__';
        insert into {{ incremental_fingerprints_relation() }}
        values ('__whole_build__', 'pending:{{ invocation_id }}')
    {%- else -%}
        select 1
    {%- endif -%}
{%- endmacro %}
