{#-
  segment_membership_history renders every segment's SQL inline and declares a dependency
  on dim_users only, so a segment model must read nothing else: otherwise the history could
  run before the other model is rebuilt. Returns one row per offending segment.
-#}
{%- set problems = [] -%}
{%- if execute -%}
    {%- for node in segment_models() -%}
        {%- for parent in node.depends_on.nodes
              if parent.split('.')[-1] != 'dim_users' -%}
            {%- do problems.append((node.name, parent)) -%}
        {%- endfor -%}
    {%- endfor -%}
{%- endif -%}

with

problems as (

    {% for model_name, parent in problems -%}
        select
            '{{ model_name }}' as model_name,
            '{{ parent }}' as unexpected_parent
        {% if not loop.last %}union all{% endif %}
    {% else -%}
        select
            cast(null as {{ dbt.type_string() }}) as model_name,
            cast(null as {{ dbt.type_string() }}) as unexpected_parent
        where 1 = 0
    {%- endfor %}

),

final as (

    select * from problems

)

select * from final
