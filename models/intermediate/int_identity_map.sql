{#-
  Every id of the identity graph mapped to its person (user_key).

  Users: userIds are merged only by an explicit alias (user links); int_identity_labels finds
  the connected components of the user links (its own table, so that each engine computes the
  rounds once) and says whether its bound of rounds sufficed (is_graph_converged).
  user_key = the smallest userId of the component (string order) that some message carries as
  its userId: an alias's previousId alone never names the person (a server-side alias of an
  anonymous id sent without that anonymousId is read as a userId, but cannot become the key).

  Devices (anonymous ids): a device linked to userIds of one person maps to that person
  entirely. A device linked to userIds of several persons (a shared device) is a conflict: it
  never merges them. Its events belong to the person who last identified on it before the
  event (any message carrying both ids is an identification), in event order (occurred_at,
  received_at, message_id); events before its first identification belong to the first person
  who identifies on it. One row per period: from the identification where the person changes
  (inclusive) to the next one (exclusive).
-#}
with

links as (

    select * from {{ ref('int_identity_links') }}

),

user_labels as (

    -- every userId of the graph with its component's label (the person search)
    select * from {{ ref('int_identity_labels') }}

),

graph_convergence as (

    select coalesce(min(case when is_graph_converged then 1 else 0 end), 1) = 1 as is_converged
    from user_labels

),

message_user_ids as (

    -- the graph's userIds that some message carries as its userId (an alias's previousId
    -- alone does not make one)
    select distinct events.user_id
    from {{ ref('stg_events') }} as events
    inner join user_labels
        on events.user_id = user_labels.user_id
    where events.occurred_at <= {{ as_of() }}

),

user_rows as (

    -- user_key: the smallest userId of the person that some message carries as its userId
    -- (the label itself only for an unresolved part without one)
    select
        'user' as id_type,
        cast(null as {{ dbt.type_string() }}) as anonymous_id,
        user_labels.user_id,
        coalesce(
            min(message_user_ids.user_id) over (partition by user_labels.label),
            user_labels.label
        ) as user_key,
        count(*) over (partition by user_labels.label) as linked_user_count
    from user_labels
    left join message_user_ids
        on user_labels.user_id = message_user_ids.user_id

),

device_links as (

    select
        links.anonymous_id,
        links.user_id,
        links.first_linked_at,
        links.first_link_received_at,
        links.first_link_message_id,
        user_rows.user_key
    from links
    inner join user_rows
        on links.user_id = user_rows.user_id
    where links.link_type = 'device'

),

device_summary as (

    select
        anonymous_id,
        count(distinct user_id) as linked_user_count,
        count(distinct user_key) as linked_person_count
    from device_links
    group by anonymous_id

),

single_person_devices as (

    -- linked to one person: the whole device is that person's (user_id: its first link)
    select
        device_links.anonymous_id,
        device_links.user_id,
        device_links.user_key,
        device_summary.linked_user_count,
        row_number() over (
            partition by device_links.anonymous_id
            order by
                device_links.first_linked_at,
                device_links.first_link_received_at,
                device_links.first_link_message_id,
                device_links.user_id
        ) as link_rank
    from device_links
    inner join device_summary
        on device_links.anonymous_id = device_summary.anonymous_id
    where device_summary.linked_person_count = 1

),

shared_device_evidence as (

    -- every identification on a shared device, in event order
    select
        events.anonymous_id,
        events.user_id,
        user_rows.user_key,
        events.occurred_at,
        events.received_at,
        events.message_id
    from {{ ref('stg_events') }} as events
    inner join device_summary
        on events.anonymous_id = device_summary.anonymous_id
    inner join user_rows
        on events.user_id = user_rows.user_id
    where
        device_summary.linked_person_count > 1
        and events.occurred_at <= {{ as_of() }}

),

shared_device_changes as (

    select
        *,
        lag(user_key) over (
            partition by anonymous_id order by {{ event_order() }}
        ) as previous_user_key
    from shared_device_evidence

),

shared_device_period_starts as (

    -- an identification by another person than the previous one opens a period
    select
        anonymous_id,
        user_id,
        user_key,
        occurred_at,
        received_at,
        message_id,
        row_number() over (partition by anonymous_id order by {{ event_order() }}) as period_number
    from shared_device_changes
    where previous_user_key is null or previous_user_key <> user_key

),

shared_device_periods as (

    select
        starts.anonymous_id,
        starts.user_id,
        starts.user_key,
        starts.period_number,
        -- the first period also holds the events before the first identification
        case when starts.period_number > 1 then starts.occurred_at end as valid_from_at,
        case when starts.period_number > 1 then starts.received_at end as valid_from_received_at,
        case when starts.period_number > 1 then starts.message_id end as valid_from_message_id,
        next_starts.occurred_at as valid_to_at,
        next_starts.received_at as valid_to_received_at,
        next_starts.message_id as valid_to_message_id
    from shared_device_period_starts as starts
    left join shared_device_period_starts as next_starts
        on
            starts.anonymous_id = next_starts.anonymous_id
            and starts.period_number + 1 = next_starts.period_number

),

anonymous_rows as (

    select
        'anonymous' as id_type,
        anonymous_id,
        user_id,
        user_key,
        1 as period_number,
        cast(null as {{ dbt.type_timestamp() }}) as valid_from_at,
        cast(null as {{ dbt.type_timestamp() }}) as valid_from_received_at,
        cast(null as {{ dbt.type_string() }}) as valid_from_message_id,
        cast(null as {{ dbt.type_timestamp() }}) as valid_to_at,
        cast(null as {{ dbt.type_timestamp() }}) as valid_to_received_at,
        cast(null as {{ dbt.type_string() }}) as valid_to_message_id,
        linked_user_count,
        false as has_conflicting_links
    from single_person_devices
    where link_rank = 1

    union all

    select
        'anonymous' as id_type,
        shared_device_periods.anonymous_id,
        shared_device_periods.user_id,
        shared_device_periods.user_key,
        shared_device_periods.period_number,
        shared_device_periods.valid_from_at,
        shared_device_periods.valid_from_received_at,
        shared_device_periods.valid_from_message_id,
        shared_device_periods.valid_to_at,
        shared_device_periods.valid_to_received_at,
        shared_device_periods.valid_to_message_id,
        device_summary.linked_user_count,
        true as has_conflicting_links
    from shared_device_periods
    inner join device_summary
        on shared_device_periods.anonymous_id = device_summary.anonymous_id

),

final as (

    select
        user_rows.id_type,
        user_rows.anonymous_id,
        user_rows.user_id,
        user_rows.user_key,
        1 as period_number,
        cast(null as {{ dbt.type_timestamp() }}) as valid_from_at,
        cast(null as {{ dbt.type_timestamp() }}) as valid_from_received_at,
        cast(null as {{ dbt.type_string() }}) as valid_from_message_id,
        cast(null as {{ dbt.type_timestamp() }}) as valid_to_at,
        cast(null as {{ dbt.type_timestamp() }}) as valid_to_received_at,
        cast(null as {{ dbt.type_string() }}) as valid_to_message_id,
        user_rows.linked_user_count,
        false as has_conflicting_links,
        graph_convergence.is_converged as is_graph_converged
    from user_rows
    cross join graph_convergence

    union all

    select
        anonymous_rows.*,
        graph_convergence.is_converged as is_graph_converged
    from anonymous_rows
    cross join graph_convergence

)

select * from final
