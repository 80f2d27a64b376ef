{#-
  What the identity graph could not resolve by merging, counted here:
    - shared_device: every link of an anonymous_id linked to userIds of more than one person.
      The device never merges them; its events are split by period (int_identity_map).
    - graph_not_converged: a user link still joining two labels after
      var identity_graph_max_rounds rounds of label propagation (raise the var).
-#}
with

links as (

    select * from {{ ref('int_identity_links') }}

),

identity_map as (

    select * from {{ ref('int_identity_map') }}

),

user_keys as (

    select user_id, user_key from identity_map
    where id_type = 'user'

),

device_periods as (

    select
        anonymous_id,
        user_id,
        user_key,
        period_number,
        linked_user_count
    from identity_map
    where id_type = 'anonymous' and has_conflicting_links

),

shared_devices as (

    select
        anonymous_id,
        max(linked_user_count) as linked_user_count,
        count(*) as device_periods
    from device_periods
    group by anonymous_id

),

person_periods as (

    select
        anonymous_id,
        user_key,
        count(*) as periods
    from device_periods
    group by anonymous_id, user_key

),

shared_device_links as (

    select
        'shared_device' as conflict_type,
        links.anonymous_id,
        links.user_id,
        user_keys.user_key,
        links.first_linked_at,
        links.first_link_message_id,
        links.first_link_source,
        links.evidence_count,
        -- the person who holds the device's events before any identification
        first_period.user_key as resolved_user_key,
        coalesce(first_period.user_key = user_keys.user_key, false) as is_resolved_link,
        coalesce(person_periods.periods, 0) as periods,
        shared_devices.linked_user_count
    from links
    inner join shared_devices
        on links.anonymous_id = shared_devices.anonymous_id
    inner join user_keys
        on links.user_id = user_keys.user_id
    left join device_periods as first_period
        on
            links.anonymous_id = first_period.anonymous_id
            and first_period.period_number = 1
    left join person_periods
        on
            links.anonymous_id = person_periods.anonymous_id
            and user_keys.user_key = person_periods.user_key
    where links.link_type = 'device'

),

unconverged_links as (

    select
        'graph_not_converged' as conflict_type,
        cast(null as {{ dbt.type_string() }}) as anonymous_id,
        links.user_id,
        user_keys.user_key,
        links.first_linked_at,
        links.first_link_message_id,
        links.first_link_source,
        links.evidence_count,
        previous_keys.user_key as resolved_user_key,
        false as is_resolved_link,
        cast(0 as {{ dbt.type_bigint() }}) as periods,
        cast(null as {{ dbt.type_bigint() }}) as linked_user_count
    from links
    inner join user_keys
        on links.user_id = user_keys.user_id
    inner join user_keys as previous_keys
        on links.previous_user_id = previous_keys.user_id
    where
        links.link_type = 'user'
        and user_keys.user_key <> previous_keys.user_key

),

final as (

    select * from shared_device_links
    union all
    select * from unconverged_links

)

select * from final
