{#-
  Every dbt invocation first forgets the inputs key of the last whole build (on-run-start).
  `ewh build` skips a build whose inputs (raw tables, code, command line) equal the key the
  last successful `ewh build` recorded (ewh/common/build_inputs.py); any other invocation in
  between (a `dbt run` of one model, other vars, a build that failed) may have changed the
  tables, so it leaves no key and the next build runs. DuckDB only: on Spark nothing is skipped.
-#}
{% macro forget_build_inputs() -%}
    {%- if target.type == 'duckdb' -%}
        {{ incremental_fingerprints_ddl() }};
        delete from {{ incremental_fingerprints_relation() }} where model_name = '__whole_build__'
    {%- else -%}
        select 1
    {%- endif -%}
{%- endmacro %}
