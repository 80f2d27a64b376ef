{#-
  Analytics consent from a Segment context.consent.categoryPreferences object (JSON text),
  whose keys may be in any case ("Analytics", "ANALYTICS"): the object is lower-cased
  before the key lookup. Returns true / false when the key is present, null when absent.
  Argument: preferences_json, an expression holding the categoryPreferences JSON text.
-#}
{% macro analytics_consent(preferences_json) -%}
    {%- set analytics = json_string('lower(' ~ preferences_json ~ ')', '$.analytics') -%}
    case
        when {{ analytics }} in ('true', '1') then true
        when {{ analytics }} in ('false', '0') then false
    end
{%- endmacro %}
