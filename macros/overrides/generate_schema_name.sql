{#-
  Schemas are part of the public interface: dbt writes to exactly raw, staging,
  intermediate, marts and segments, never to <target>_<custom> prefixes.
-#}
{% macro generate_schema_name(custom_schema_name, node) -%}
    {%- if custom_schema_name is none -%}
        {{ target.schema }}
    {%- else -%}
        {{ custom_schema_name | trim }}
    {%- endif -%}
{%- endmacro %}
