{{
    config(
        materialized='incremental',
        incremental_strategy=refresh_strategy('merge'),
        partition_by=refresh_partition_by(),
        contract={'enforced': refresh_contract_enforced()},
        unique_key='membership_id',
        on_schema_change='append_new_columns',
        full_refresh=false,
        pre_hook="{{ undo_history_beyond_as_of() }}"
    )
}}

-- The segments are found in the graph (meta.segment) and their rules rendered inline,
-- so this model reads what they read. Every segment model reads dim_users.
-- depends_on: {{ ref('dim_users') }}
-- An as_of moved back first undoes what later builds recorded (the pre-hook): the history is
-- then what it would be had those builds never run.

with

current_members as (

    {{ current_segment_members() }}

),

open_memberships as (

    {% if is_incremental() %}
        select * from {{ this }}
        where is_current
    {% else %}
        select
            cast(null as {{ dbt.type_string() }}) as membership_id,
            cast(null as {{ dbt.type_string() }}) as user_key,
            cast(null as {{ dbt.type_string() }}) as segment,
            cast(null as {{ dbt.type_timestamp() }}) as entered_at
        where 1 = 0
    {% endif %}

),

exits as (

    -- open memberships whose user is no longer in the segment: closed at this as_of
    select
        open_memberships.membership_id,
        open_memberships.user_key,
        open_memberships.segment,
        open_memberships.entered_at,
        {{ as_of() }} as exited_at,
        false as is_current
    from open_memberships
    left join current_members
        on
            open_memberships.user_key = current_members.user_key
            and open_memberships.segment = current_members.segment
    where current_members.user_key is null

),

entries as (

    -- members without an open membership: a new spell entered at this as_of
    select
        current_members.user_key,
        current_members.segment,
        {{ as_of() }} as entered_at
    from current_members
    left join open_memberships
        on
            current_members.user_key = open_memberships.user_key
            and current_members.segment = open_memberships.segment
    where open_memberships.user_key is null

),

new_memberships as (

    select
        {{ dbt.hash(dbt.concat([
            'user_key', "'|'", 'segment', "'|'", 'cast(entered_at as ' ~ dbt.type_string() ~ ')'
        ])) }} as membership_id,
        user_key,
        segment,
        entered_at,
        cast(null as {{ dbt.type_timestamp() }}) as exited_at,
        true as is_current
    from entries

),

final as (

    select * from exits
    union all
    select * from new_memberships

)

{{ select_upserted_rows('membership_id', 'segment') }}
