{#-
  Members of every segment at the end of each UTC day, from segment_membership_history:
  the spells entered minus those exited up to that day, as the builds observed them (a day
  without a build carries the previous day's size). One row per segment and day, from the
  day of the first recorded entry (at most var segment_sizes_max_days back) to as_of's day.
-#}
{%- set max_days = var('segment_sizes_max_days', 1830) -%}

with

history as (

    select * from {{ ref('segment_membership_history') }}

),

segments as (

    {% for node in segment_models() -%}
        select '{{ node.name }}' as segment
        {% if not loop.last %}union all{% endif %}
    {% else -%}
        select cast(null as {{ dbt.type_string() }}) as segment
        where 1 = 0
    {%- endfor %}

),

changes as (

    select
        segment,
        cast(entered_at as date) as change_date,
        1 as entered,
        0 as exited
    from history
    union all
    select
        segment,
        cast(exited_at as date) as change_date,
        0 as entered,
        1 as exited
    from history
    where exited_at is not null

),

bounds as (

    select
        cast({{ as_of() }} as date) as last_date,
        min(change_date) as first_change_date
    from changes

),

spine_start as (

    select
        last_date,
        case
            when first_change_date > {{ dbt.dateadd('day', -1 * (max_days - 1), 'last_date') }}
                then first_change_date
            else cast({{ dbt.dateadd('day', -1 * (max_days - 1), 'last_date') }} as date)
        end as first_date
    from bounds
    where first_change_date is not null

),

numbers as (

    {{ dbt.generate_series(max_days) }}

),

days as (

    select cast({{ dbt.dateadd('day', 'numbers.generated_number - 1', 'spine_start.first_date') }} as date)
        as size_date
    from numbers
    cross join spine_start
    where
        {{ dbt.dateadd('day', 'numbers.generated_number - 1', 'spine_start.first_date') }}
        <= spine_start.last_date

),

carried_in as (

    -- members from before the first day shown
    select
        changes.segment,
        sum(changes.entered - changes.exited) as members
    from changes
    cross join spine_start
    where changes.change_date < spine_start.first_date
    group by changes.segment

),

daily_changes as (

    select
        segment,
        change_date,
        sum(entered) as entered,
        sum(exited) as exited
    from changes
    group by segment, change_date

),

grid as (

    select
        segments.segment,
        days.size_date,
        coalesce(daily_changes.entered, 0) as users_entered,
        coalesce(daily_changes.exited, 0) as users_exited,
        coalesce(carried_in.members, 0) as carried_in_members
    from segments
    cross join days
    left join daily_changes
        on
            segments.segment = daily_changes.segment
            and days.size_date = daily_changes.change_date
    left join carried_in
        on segments.segment = carried_in.segment

),

final as (

    select
        size_date,
        segment,
        cast(carried_in_members + sum(users_entered - users_exited) over (
            partition by segment
            order by size_date
            rows between unbounded preceding and current row
        ) as {{ dbt.type_bigint() }}) as members,
        cast(users_entered as {{ dbt.type_bigint() }}) as users_entered,
        cast(users_exited as {{ dbt.type_bigint() }}) as users_exited
    from grid

)

select * from final
