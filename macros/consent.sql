{#-
  Analytics consent from Segment's context.consent.categoryPreferences, whose keys may be
  in any case ("Analytics", "ANALYTICS"). The object is lower-cased before the key lookup.
  Returns true / false when the key is present, null when it is absent.
-#}
{% macro analytics_consent(payload_column) -%}
    {%- set preferences = 'lower(' ~ json_string(payload_column, '$.context.consent.categoryPreferences') ~ ')' -%}
    {%- set analytics = json_string(preferences, '$.analytics') -%}
    case
        when {{ analytics }} in ('true', '1') then true
        when {{ analytics }} in ('false', '0') then false
    end
{%- endmacro %}
