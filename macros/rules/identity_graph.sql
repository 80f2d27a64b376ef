{#-
  The label propagation rounds of int_identity_labels (see the model's header for the algorithm):
  CTEs labels_0 .. labels_<max_rounds> (node_id, label) over the model's CTEs user_nodes and
  user_edges, each followed by a comma.

  DuckDB: each round reads the previous round several times (proposals, groups, hooking,
  shortcutting as joins).
  Spark inlines every deterministic CTE at each place it is read, so that form makes a plan
  that grows exponentially with the rounds (10 rounds did not finish planning). The default
  (Spark) version computes exactly the same rounds and reads each round once: a node's own
  label rides beside its proposal, and the two lookups by label (the group a node's label
  names, the label of the node a label names) are window functions over each node written
  twice, once in each role; the plan grows linearly with the rounds.
-#}
{% macro identity_label_rounds(max_rounds) -%}
    {{ return(adapter.dispatch('identity_label_rounds', 'engagement_warehouse')(max_rounds)) }}
{%- endmacro %}

{% macro duckdb__identity_label_rounds(max_rounds) -%}
labels_0 as (

    select node_id, node_id as label from user_nodes

),

{% for round in range(1, max_rounds + 1) -%}
{%- set previous = 'labels_' ~ (round - 1) -%}
proposed_{{ round }} as (

    -- each node proposes the smallest label among itself and its neighbours
    select
        candidates.node_id,
        min(candidates.label) as proposal
    from (
        select node_id, label from {{ previous }}
        union all
        select user_edges.node_id, {{ previous }}.label
        from user_edges
        inner join {{ previous }}
            on user_edges.neighbour_id = {{ previous }}.node_id
    ) as candidates
    group by candidates.node_id

),

group_minimum_{{ round }} as (

    -- hooking: the smallest proposal among the nodes sharing a label
    select
        {{ previous }}.label,
        min(proposed_{{ round }}.proposal) as proposal
    from {{ previous }}
    inner join proposed_{{ round }}
        on {{ previous }}.node_id = proposed_{{ round }}.node_id
    group by {{ previous }}.label

),

hooked_{{ round }} as (

    -- a node takes the smallest of its proposal, its group's, and (when it is itself a
    -- label) the group it names
    select
        proposed.node_id,
        least(
            proposed.proposal,
            coalesce(own_group.proposal, proposed.proposal),
            coalesce(named_group.proposal, proposed.proposal)
        ) as label
    from proposed_{{ round }} as proposed
    inner join {{ previous }}
        on proposed.node_id = {{ previous }}.node_id
    left join group_minimum_{{ round }} as own_group
        on {{ previous }}.label = own_group.label
    left join group_minimum_{{ round }} as named_group
        on proposed.node_id = named_group.label

),

labels_{{ round }} as (

    -- shortcutting: also take the label of the node named by the label
    select
        hooked.node_id,
        least(hooked.label, coalesce(jumped.label, hooked.label)) as label
    from hooked_{{ round }} as hooked
    left join hooked_{{ round }} as jumped
        on hooked.label = jumped.node_id

),

{% endfor -%}
{%- endmacro %}

{% macro default__identity_label_rounds(max_rounds) -%}
user_pairs as (

    -- every node with itself and with each of its neighbours
    select node_id, node_id as neighbour_id from user_nodes
    union
    select node_id, neighbour_id from user_edges

),

labels_0 as (

    select node_id, node_id as label from user_nodes

),

{% for round in range(1, max_rounds + 1) -%}
{%- set previous = 'labels_' ~ (round - 1) -%}
proposed_{{ round }} as (

    -- each node proposes the smallest label among itself and its neighbours, and keeps its
    -- own label beside its proposal
    select
        user_pairs.node_id,
        min(
            case when user_pairs.neighbour_id = user_pairs.node_id then {{ previous }}.label end
        ) as label,
        min({{ previous }}.label) as proposal
    from user_pairs
    inner join {{ previous }}
        on user_pairs.neighbour_id = {{ previous }}.node_id
    group by user_pairs.node_id

),

group_views_{{ round }} as (

    -- hooking: each node in two roles, as a member of the group of its label and as the node
    -- a group's label names; each row gets the smallest proposal of that group's members
    select
        proposed.node_id,
        proposed.proposal,
        min(case when roles.is_member then proposed.proposal end) over (
            partition by case when roles.is_member then proposed.label else proposed.node_id end
        ) as group_proposal
    from proposed_{{ round }} as proposed
    cross join (values (true), (false)) as roles (is_member)

),

hooked_{{ round }} as (

    -- a node takes the smallest of its proposal, its group's, and the group it names
    select
        node_id,
        least(min(proposal), min(group_proposal)) as label
    from group_views_{{ round }}
    group by node_id

),

jumps_{{ round }} as (

    -- shortcutting: each node in two roles, as itself and as a pointer to the node its label
    -- names; each row gets the label of the node its partition is keyed by
    select
        hooked.node_id,
        roles.is_self,
        hooked.label,
        max(case when roles.is_self then hooked.label end) over (
            partition by case when roles.is_self then hooked.node_id else hooked.label end
        ) as named_label
    from hooked_{{ round }} as hooked
    cross join (values (true), (false)) as roles (is_self)

),

labels_{{ round }} as (

    -- also take the label of the node named by the label
    select
        node_id,
        least(
            min(label),
            coalesce(min(case when not is_self then named_label end), min(label))
        ) as label
    from jumps_{{ round }}
    group by node_id

),

{% endfor -%}
{%- endmacro %}
