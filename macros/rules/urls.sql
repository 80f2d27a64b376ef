{#-
  A URL path normalised before any rule compares it: lower case, without the query string
  (from '?') or the fragment (from '#'), without trailing slashes except the root '/'.
  '/Pricing/?plan=pro#top' -> '/pricing'; '/' and '/?x=1' -> '/'; null stays null.
  Argument: path, a SQL string expression.
-#}
{% macro normalize_path(path) -%}
    case
        when {{ path }} is null then null
        else coalesce(nullif(
            regexp_replace(regexp_replace(lower(trim({{ path }})), '[?#].*$', ''), '/+$', ''),
            ''
        ), '/')
    end
{%- endmacro %}
