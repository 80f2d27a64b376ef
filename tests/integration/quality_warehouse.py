"""A tiny warehouse with every table the suites validate, clean by construction.

Shared by the quality integration tests. Worked out by hand:
- raw.events and staging.stg_events: 6 messages m0..m5, one per Segment type, received
  2026-11-01 10:00 (2 h before AS_OF, so fresh); odd ones carry a user_id.
- marts.fct_sessions: sessions s0..s2 of users u0..u2; s2 bought for 19.99.
- marts.dim_users: users u0..u2, all consenting, RFM scores 1..3.
- segments.seg_test: members u1, u2.
- segments.segment_membership_history: u1 left seg_test on 10-05 and re-entered the same
  instant (adjacent spells, no overlap); u2 entered on 10-10 and is current.
"""

from __future__ import annotations

import shutil
from datetime import datetime
from pathlib import Path

import duckdb

from ewh.ingest.raw_tables import ensure_raw_tables
from ewh.quality.project import GENERATED_DIRS, PROJECT_DIR
from ewh.quality.segment_tables import SegmentTable

AS_OF = datetime(2026, 11, 1, 12, 0, 0)
SEGMENT = SegmentTable("seg_test", "segments", ("user_key", "user_id", "score"), True)
TYPES = ["track", "identify", "page", "screen", "alias", "group"]
EVENT_TYPES = ["product_view", "identify", "page_view", "screen_view", "alias", "click"]


def _event(i: int, message_type: str) -> str:
    user = f"'u{i}'" if i % 2 else "null"
    at = "timestamp '2026-11-01 10:00:00'"
    return (f"('m{i}', '{message_type}', 'Product Viewed', {user}, 'a{i}', {at}, {at}, {at}, "
            f"'{{}}', 'file:events.jsonl:{i}', 'sha', 'load-1', timestamp '2026-11-01 11:00:00')")


def build_warehouse(path: Path) -> None:
    con = duckdb.connect(str(path))
    ensure_raw_tables(con)
    con.execute("insert into raw.events values " + ", ".join(
        _event(i, t) for i, t in enumerate(TYPES)))
    mapping = ", ".join(f"('{t}', '{e}')" for t, e in zip(TYPES, EVENT_TYPES, strict=True))
    con.execute("create schema staging")
    con.execute(f"""create table staging.stg_events as select
        e.message_id, e.message_type, e.event_name, m.event_type, e.user_id, e.anonymous_id,
        e.occurred_at, e.received_at, cast(null as double) as revenue,
        cast(10.0 as double) as price, cast(null as varchar) as order_id,
        'p1' as product_id, true as has_analytics_consent
        from raw.events e
        join (values {mapping}) m(message_type, event_type) using (message_type)""")
    con.execute("create schema marts")
    con.execute("""create table marts.fct_sessions as select
        's' || i as session_id, 'u' || i as user_key, 'u' || i as user_id, 'a' || i as device_id,
        timestamp '2026-10-31 10:00:00' as started_at, timestamp '2026-10-31 10:05:00' as ended_at,
        300 as duration_seconds, 3 as event_count, 2 as page_views, '/' as landing_page,
        '/pricing' as exit_page, null as referrer, 'google' as utm_source, 'cpc' as utm_medium,
        'fall' as utm_campaign, 'paid_search' as channel, 'desktop' as device_type,
        false as is_bounce, i = 1 as has_add_to_cart, i = 2 as has_purchase,
        case when i = 2 then 19.99 else 0 end as revenue
        from range(3) r(i)""")
    con.execute("""create table marts.dim_users as select
        'u' || i as user_key, 'u' || i as user_id,
        timestamp '2026-10-01 00:00:00' as first_seen_at, timestamp '2026-10-31 10:05:00' as last_seen_at,
        1 as sessions, 3 as events, (i = 2)::int as orders,
        case when i = 2 then 19.99 else 0 end as revenue,
        case when i = 2 then 19.99 else 0 end as revenue_365d, (i = 2)::int as orders_365d,
        case when i = 2 then timestamp '2026-10-31 10:04:00' end as last_order_at,
        1 as sessions_30d, 1 as active_days_30d, null::timestamp as last_cart_add_at,
        false as has_purchase_since_last_cart_add, true as has_analytics_consent,
        timestamp '2026-11-01 12:00:00' as as_of,
        i + 1 as recency_score, i + 1 as frequency_score, i + 1 as monetary_score
        from range(3) r(i)""")  # noqa: E501
    con.execute("create schema segments")
    con.execute("""create table segments.seg_test as
        select 'u' || i as user_key, 'u' || i as user_id, i as score from range(1, 3) r(i)""")
    con.execute("""create table segments.segment_membership_history as select * from (values
        ('h1', 'u1', 'seg_test', timestamp '2026-10-01', timestamp '2026-10-05', false),
        ('h2', 'u1', 'seg_test', timestamp '2026-10-05', null, true),
        ('h3', 'u2', 'seg_test', timestamp '2026-10-10', null, true)
        ) h(membership_id, user_key, segment, entered_at, exited_at, is_current)""")
    con.close()


def execute(path: Path, *statements: str) -> None:
    con = duckdb.connect(str(path))
    for statement in statements:
        con.execute(statement)
    con.close()


def copy_project(target: Path) -> Path:
    """A private copy of the committed GX project, so runs never write into the repo. Like a
    fresh clone it has no generated files: the first run writes them."""
    shutil.copytree(PROJECT_DIR / "gx", target / "gx",
                    ignore=shutil.ignore_patterns("uncommitted", *GENERATED_DIRS))
    return target
