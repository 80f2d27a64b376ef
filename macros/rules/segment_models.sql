{#-
  Segment discovery. A segment is any enabled model whose yml carries `meta.segment`
  (config.meta.segment in each models/segments/seg_<name>.yml, beside its .sql; see
  models/segments/README.md). Returns graph nodes, sorted by name.
  The graph is only populated at execution time; at parse time this returns [].
-#}
{% macro segment_models() -%}
    {%- set found = [] -%}
    {%- if execute -%}
        {%- for node in graph.nodes.values() | sort(attribute='name') -%}
            {%- if node.resource_type == 'model' and node.config.enabled
                  and (node.config.get('meta', {}) or {}).get('segment') is not none -%}
                {%- do found.append(node) -%}
            {%- endif -%}
        {%- endfor -%}
    {%- endif -%}
    {{ return(found) }}
{%- endmacro %}


{#-
  The current members of every segment, as (user_key, segment) rows.
  Each segment model's own SQL is rendered inline (not its table), so the result is
  computed from the same upstream tables in the same run, whatever order dbt runs
  models in. dbt cannot declare a dependency on models found in the graph
  (refs must be known at parse time), so reading the seg_ tables would race with
  their build; rendering the rule avoids that. A segment model may only ref
  models the caller depends on (see the `-- depends_on` lines of
  segment_membership_history).
-#}
{% macro current_segment_members() -%}
    {%- set segments = segment_models() -%}
    {%- if segments | length == 0 -%}
        select
            cast(null as {{ dbt.type_string() }}) as user_key,
            cast(null as {{ dbt.type_string() }}) as segment
        where 1 = 0
    {%- else -%}
        {%- for node in segments %}
            select distinct
                member.user_key,
                '{{ node.name }}' as segment
            from (
                {{ render(node.raw_code) }}
            ) as member
            {% if not loop.last %}union all{% endif %}
        {%- endfor -%}
    {%- endif -%}
{%- endmacro %}
