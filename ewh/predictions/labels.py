"""The labels: what happened in the days after each snapshot date (DuckDB SQL, scratch warehouse).

Run after the scratch warehouse is built at the training as_of, so the outcomes use every
event up to then. A snapshot row's user_key is a userId (int_user_features holds identified
users only); it is followed to today's person through int_identity_map, so an order placed
after a later alias merge still counts. One column per model, `label_<name>`:

- order:       an order (int_orders, not cancelled) in (date, date + horizon]
- no_activity: no user-initiated event in (date, date + horizon]

A label is only defined once date + horizon <= as_of; the planner never asks for others.
`has_consent_now` is the person's analytics consent today: users who have since withdrawn
it are not trained on.
"""

from __future__ import annotations

from collections.abc import Sequence

from ewh.predictions.specs import ModelSpec


def _label_expression(spec: ModelSpec) -> str:
    window = (f"{{table}}.{{column}} > subjects.snapshot_at and {{table}}.{{column}} <= "
              f"subjects.snapshot_at + interval ({int(spec.horizon_days)}) day")
    if spec.outcome == "order":
        hit = window.format(table="orders", column="ordered_at")
        return f"count(distinct case when {hit} then orders.order_id end) > 0"
    if spec.outcome == "no_activity":
        hit = window.format(table="activity", column="occurred_at")
        return f"count(case when {hit} then 1 end) = 0"
    raise ValueError(f"model {spec.name}: unknown outcome {spec.outcome!r}")


def labels_sql(specs: Sequence[ModelSpec]) -> str:
    """`create table training.labels`: one row per snapshot row, a label column per model."""
    order_labels = ",\n        ".join(
        f"{_label_expression(s)} as label_{s.name}" for s in specs if s.outcome == "order")
    activity_labels = ",\n        ".join(
        f"{_label_expression(s)} as label_{s.name}" for s in specs if s.outcome == "no_activity")
    order_columns = ", ".join(f"order_outcomes.label_{s.name}" for s in specs
                              if s.outcome == "order")
    activity_columns = ", ".join(f"activity_outcomes.label_{s.name}" for s in specs
                                 if s.outcome == "no_activity")
    columns = "".join(f", {c}" for c in (order_columns, activity_columns) if c)
    return f"""
create or replace table training.labels as
with
snapshots as (
    select distinct as_of as snapshot_at, user_key from training.feature_snapshots
),
people as (
    select user_id, user_key as person_key
    from intermediate.int_identity_map
    where id_type = 'user'
),
subjects as (
    select snapshots.snapshot_at, snapshots.user_key,
        coalesce(people.person_key, snapshots.user_key) as person_key
    from snapshots
    left join people on snapshots.user_key = people.user_id
),
orders as (
    select user_key, order_id, ordered_at from intermediate.int_orders where not is_cancelled
),
activity as (
    select user_key, occurred_at from intermediate.int_events_stitched where is_user_initiated
),
order_outcomes as (
    select subjects.snapshot_at, subjects.user_key{"," if order_labels else ""}
        {order_labels}
    from subjects
    left join orders on subjects.person_key = orders.user_key
    group by subjects.snapshot_at, subjects.user_key
),
activity_outcomes as (
    select subjects.snapshot_at, subjects.user_key{"," if activity_labels else ""}
        {activity_labels}
    from subjects
    left join activity on subjects.person_key = activity.user_key
    group by subjects.snapshot_at, subjects.user_key
),
consent as (
    select user_key, has_analytics_consent from intermediate.int_user_consent
)
select subjects.snapshot_at, subjects.user_key, subjects.person_key,
    coalesce(consent.has_analytics_consent, true) as has_consent_now{columns}
from subjects
join order_outcomes
    on subjects.snapshot_at = order_outcomes.snapshot_at
    and subjects.user_key = order_outcomes.user_key
join activity_outcomes
    on subjects.snapshot_at = activity_outcomes.snapshot_at
    and subjects.user_key = activity_outcomes.user_key
left join consent on subjects.person_key = consent.user_key
"""
