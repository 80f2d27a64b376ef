{#-
  Fails for every row where `expression` is not true (null counts as a failure).
  Usable on a model or on a column (column_name is then ignored: name it in expression).
-#}
{% test expression_is_true(model, expression, column_name=none) %}
    select *
    from {{ model }}
    where not coalesce({{ expression }}, false)
{% endtest %}
