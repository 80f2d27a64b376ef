{#-
  The canonical event types: what stg_events maps every Segment message to (via the
  event_type_map seed), `other` when unmapped. dim_users has one <type>_count column per type.
-#}
{% macro canonical_event_types() -%}
    {{ return([
        'page_view', 'screen_view', 'click', 'video_play', 'search', 'product_view',
        'add_to_cart', 'remove_from_cart', 'checkout_started', 'purchase', 'signup',
        'email_delivered', 'email_open', 'email_click', 'experiment_exposure',
        'consent_updated', 'identify', 'alias', 'other'
    ]) }}
{%- endmacro %}

{#- Event types that count as an interaction: a session with one of them is not a bounce. -#}
{% macro interaction_event_types() -%}
    {{ return([
        'click', 'video_play', 'search', 'product_view', 'add_to_cart', 'remove_from_cart',
        'checkout_started', 'purchase', 'signup', 'email_click'
    ]) }}
{%- endmacro %}

{#- A SQL list literal: ('a', 'b'). -#}
{% macro sql_list(values) -%}
    ({%- for value in values -%}'{{ value }}'{% if not loop.last %}, {% endif %}{%- endfor -%})
{%- endmacro %}
