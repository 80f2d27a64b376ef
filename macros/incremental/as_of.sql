{#-
  The evaluation time of every time-window rule, as a timestamp literal (UTC).
  The dbt var `as_of` when set: any ISO-8601 date or date-time, with 'T' or a space, with
  or without fractional seconds, naive (read as UTC), 'Z', or any offset, which is converted
  to UTC: "2026-06-30T14:00:00+02:00" is 2026-06-30 12:00:00 UTC. Unset: the time the dbt
  invocation started (run_started_at, UTC).
-#}
{% macro as_of() -%}
    cast('{{ as_of_string() }}' as {{ dbt.type_timestamp() }})
{%- endmacro %}

{% macro as_of_string() -%}
    {%- set configured = var('as_of', none) -%}
    {%- if configured is none or (configured | string | trim) == '' -%}
        {{- run_started_at.strftime('%Y-%m-%d %H:%M:%S') -}}
    {%- else -%}
        {{- utc_timestamp_string(configured | string | trim) -}}
    {%- endif -%}
{%- endmacro %}

{% macro utc_timestamp_string(text) -%}
    {#- An ISO-8601 date or date-time as naive UTC text 'YYYY-MM-DD HH:MM:SS[.ffffff]'. -#}
    {%- set value = text -%}
    {%- if value[-1:] in ['Z', 'z'] -%}{%- set value = value[:-1] ~ '+00:00' -%}{%- endif -%}
    {%- set parsed = modules.datetime.datetime.fromisoformat(value) -%}
    {%- if parsed.tzinfo is not none -%}
        {%- set parsed = (parsed - parsed.utcoffset()).replace(tzinfo=none) -%}
    {%- endif -%}
    {{- parsed.strftime('%Y-%m-%d %H:%M:%S') ~ ('.%06d' % parsed.microsecond if parsed.microsecond else '') -}}
{%- endmacro %}
