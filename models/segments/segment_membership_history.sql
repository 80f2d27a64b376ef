{{
    config(
        materialized='incremental',
        incremental_strategy='merge',
        unique_key='membership_id',
        on_schema_change='append_new_columns'
    )
}}

-- Every segment model reads dim_users; its rule is rendered inline below.
-- depends_on: {{ ref('dim_users') }}

with

current_members as (

    {{ current_segment_members() }}

),

observed as (

    select
        user_key,
        segment,
        {{ as_of() }} as observed_at
    from current_members

),

{% if is_incremental() %}

open_memberships as (

    select * from {{ this }}
    where is_current

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
    left join observed
        on
            open_memberships.user_key = observed.user_key
            and open_memberships.segment = observed.segment
    where observed.user_key is null

),

entries as (

    -- members without an open membership: a new row entered at this as_of
    select
        observed.user_key,
        observed.segment,
        observed.observed_at as entered_at
    from observed
    left join open_memberships
        on
            observed.user_key = open_memberships.user_key
            and observed.segment = open_memberships.segment
    where open_memberships.user_key is null

),

{% else %}

exits as (

    select
        cast(null as {{ dbt.type_string() }}) as membership_id,
        cast(null as {{ dbt.type_string() }}) as user_key,
        cast(null as {{ dbt.type_string() }}) as segment,
        cast(null as {{ dbt.type_timestamp() }}) as entered_at,
        cast(null as {{ dbt.type_timestamp() }}) as exited_at,
        false as is_current
    where 1 = 0

),

entries as (

    select
        user_key,
        segment,
        observed_at as entered_at
    from observed

),

{% endif %}

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

select * from final
