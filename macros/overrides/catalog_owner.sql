{#-
  dbt docs shows each table's owner from the catalog, which DuckDB does not have (dbt-duckdb
  reports null). This override of dbt-duckdb's catalog query names it from the project: a
  segment's meta.segment.owner (the team that uses it), else the model's meta.owner (its
  layer's team, dbt_project.yml).
-#}
{% macro duckdb__get_catalog_results_sql() -%}
    {%- set owners = {} -%}
    {%- for node in graph.nodes.values() if node.resource_type in ('model', 'seed', 'snapshot') -%}
        {%- set meta = node.config.get('meta', {}) or {} -%}
        {%- set owner = (meta.get('segment') or {}).get('owner') or meta.get('owner') -%}
        {%- if owner -%}
            {%- do owners.update({(node.schema ~ '.' ~ node.alias) | lower: owner}) -%}
        {%- endif -%}
    {%- endfor %}
    select
        tables.table_database,
        tables.table_schema,
        tables.table_name,
        tables.table_type,
        tables.table_comment,
        columns.column_name,
        columns.column_index,
        columns.column_type,
        columns.column_comment,
        {% if owners %}
        case lower(tables.table_schema || '.' || tables.table_name)
            {%- for relation, owner in owners.items() %}
            when '{{ relation }}' then '{{ owner }}'
            {%- endfor %}
        end
        {% else %}
        cast(null as varchar)
        {% endif %} as table_owner
    from tables
    inner join columns using (table_database, table_schema, table_name)
    order by tables.table_schema, tables.table_name, columns.column_index
{%- endmacro %}
