{#-
  The person search of the identity graph: every userId of the user links (aliases) with the
  label of its connected component, found by label propagation, a bounded Jinja loop of
  var identity_graph_max_rounds rounds (macros/rules/identity_graph.sql). Each round: every
  node proposes the smallest label among itself and its neighbours; the smallest proposal of
  the nodes sharing a label goes to the whole group and to the node that label names
  (hooking); each node then also takes the label of the node its label names (shortcutting).
  Rounds grow with the log of the alias chain length (measured: a chain of 1,024 links needs
  10 rounds, of 4,096 links 12).

  Converged: no user link joins two labels. Read in one pass over the last round: a node whose
  closed neighbourhood (itself and its neighbours) holds two labels has a link joining two
  labels, and a link joining two labels puts both in its ends' neighbourhoods. When the bound
  is too small, is_graph_converged is false on every row, and int_identity_conflicts lists the
  links still joining two persons (conflict_type graph_not_converged).

  Its own table, read by int_identity_map: Spark inlines a CTE at every place it is read, so
  the rounds inside int_identity_map were computed once per read there.
-#}
{%- set max_rounds = var('identity_graph_max_rounds', 10) -%}

with

links as (

    select * from {{ ref('int_identity_links') }}

),

user_edges as (

    -- the user links, both ways
    select previous_user_id as node_id, user_id as neighbour_id
    from links
    where link_type = 'user'
    union
    select user_id as node_id, previous_user_id as neighbour_id
    from links
    where link_type = 'user'

),

user_nodes as (

    select user_id as node_id from links
    union
    select previous_user_id as node_id from links where previous_user_id is not null

),

{{ identity_label_rounds(max_rounds) -}}
closed_neighbourhoods as (

    select node_id, node_id as neighbour_id from user_nodes
    union
    select node_id, neighbour_id from user_edges

),

neighbourhood_labels as (

    -- each node's own label, and whether its neighbourhood holds another one
    select
        closed_neighbourhoods.node_id,
        min(
            case
                when closed_neighbourhoods.neighbour_id = closed_neighbourhoods.node_id
                    then labels_{{ max_rounds }}.label
            end
        ) as label,
        min(labels_{{ max_rounds }}.label) <> max(labels_{{ max_rounds }}.label)
            as has_other_label_nearby
    from closed_neighbourhoods
    inner join labels_{{ max_rounds }}
        on closed_neighbourhoods.neighbour_id = labels_{{ max_rounds }}.node_id
    group by closed_neighbourhoods.node_id

),

final as (

    select
        node_id as user_id,
        label,
        max(case when has_other_label_nearby then 1 else 0 end) over () = 0
            as is_graph_converged
    from neighbourhood_labels

)

select * from final
