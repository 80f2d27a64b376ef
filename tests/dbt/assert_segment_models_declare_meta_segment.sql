{#-
  Every models/segments/seg_*.sql model declares meta.segment with a rule, an owner,
  a refresh of hourly | daily | weekly and a boolean exported flag: Dagster and
  segment_membership_history discover segments from that metadata only.
  Returns one row per problem.
-#}
{%- set problems = [] -%}
{%- if execute -%}
    {%- for node in graph.nodes.values()
          if node.resource_type == 'model' and node.name.startswith('seg_') and node.config.enabled -%}
        {%- set segment = (node.config.get('meta', {}) or {}).get('segment') -%}
        {%- if segment is none -%}
            {%- do problems.append((node.name, 'meta.segment is missing')) -%}
        {%- else -%}
            {%- if not (segment.get('rule') or '') | trim -%}
                {%- do problems.append((node.name, 'meta.segment.rule is empty')) -%}
            {%- endif -%}
            {%- if not (segment.get('owner') or '') | trim -%}
                {%- do problems.append((node.name, 'meta.segment.owner is empty')) -%}
            {%- endif -%}
            {%- if segment.get('refresh') not in ['hourly', 'daily', 'weekly'] -%}
                {%- do problems.append((node.name, 'meta.segment.refresh is not hourly, daily or weekly')) -%}
            {%- endif -%}
            {%- if segment.get('exported') not in [true, false] -%}
                {%- do problems.append((node.name, 'meta.segment.exported is not a boolean')) -%}
            {%- endif -%}
        {%- endif -%}
    {%- endfor -%}
{%- endif -%}

with

problems as (

    {% for model_name, problem in problems -%}
        select
            '{{ model_name }}' as model_name,
            '{{ problem }}' as problem
        {% if not loop.last %}union all{% endif %}
    {% else -%}
        select
            cast(null as {{ dbt.type_string() }}) as model_name,
            cast(null as {{ dbt.type_string() }}) as problem
        where 1 = 0
    {%- endfor %}

),

final as (

    select * from problems

)

select * from final
