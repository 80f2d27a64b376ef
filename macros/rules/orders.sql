{#-
  Order events of the Segment e-commerce spec, by event name (compared case-insensitively,
  trimmed): 'Order Refunded' -> refunded, 'Order Cancelled' (or 'Order Canceled') ->
  cancelled; a purchase (event_type purchase, e.g. 'Order Completed') -> completed; else null.
  Arguments: event_name and event_type, SQL expressions.
-#}
{% macro order_event(event_name, event_type) -%}
    case
        when {{ event_type }} = 'purchase' then 'completed'
        when lower(trim({{ event_name }})) = 'order refunded' then 'refunded'
        when lower(trim({{ event_name }})) in ('order cancelled', 'order canceled') then 'cancelled'
    end
{%- endmacro %}
