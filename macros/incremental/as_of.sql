{#-
  The evaluation time of every time-window rule, as a timestamp literal (UTC).
  The dbt var `as_of` when set (e.g. "2026-11-01 00:00:00" or "2026-11-01T00:00:00Z"),
  else the time the dbt invocation started (run_started_at, UTC).
-#}
{% macro as_of() -%}
    cast('{{ as_of_string() }}' as {{ dbt.type_timestamp() }})
{%- endmacro %}

{% macro as_of_string() -%}
    {%- set configured = var('as_of', none) -%}
    {%- if configured is none or (configured | string | trim) == '' -%}
        {{- run_started_at.strftime('%Y-%m-%d %H:%M:%S') -}}
    {%- else -%}
        {%- set text = configured | string | trim | replace('T', ' ') -%}
        {%- if text.endswith('Z') -%}{%- set text = text[:-1] -%}{%- endif -%}
        {%- if text.endswith('+00:00') -%}{%- set text = text[:-6] -%}{%- endif -%}
        {{- text -}}
    {%- endif -%}
{%- endmacro %}
