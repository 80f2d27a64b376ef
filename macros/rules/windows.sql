{#-
  The one definition of a time window. "In the last N days/hours" means
      column > as_of - N  and  column <= as_of
  so something exactly N old is no longer in the window, and something after as_of is not
  in it yet. Every rule with a window uses these macros (or the columns computed with them).
-#}

{#- The window's exclusive lower bound, as_of - N (a timestamp expression). -#}
{% macro window_start(datepart, amount, at=none) -%}
    {{ dbt.dateadd(datepart, -1 * amount, at if at is not none else as_of()) }}
{%- endmacro %}

{#- True when `column` is in the last `amount` `datepart`s before `at` (default as_of). -#}
{% macro in_last(column, datepart, amount, at=none) -%}
    {%- set until = at if at is not none else as_of() -%}
    ({{ column }} > {{ window_start(datepart, amount, until) }} and {{ column }} <= {{ until }})
{%- endmacro %}
