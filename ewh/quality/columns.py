"""Every column list the suites rely on, in one place.

``*_COLUMNS`` are required: a missing one is schema drift (an error). ``*_OPTIONAL`` columns
are validated when present; while a model does not build them yet, their expectations
degrade to a warning that says so instead of blocking the pipeline.
"""

from __future__ import annotations

from ewh.contract.vocabulary import CANONICAL_EVENT_TYPES, OTHER_EVENT_TYPE
from ewh.contract.vocabulary import MESSAGE_TYPES as SEGMENT_MESSAGE_TYPES

__all__ = ["CANONICAL_EVENT_TYPES", "OTHER_EVENT_TYPE", "SEGMENT_MESSAGE_TYPES"]

RAW_EVENTS_COLUMNS = (
    "message_id", "message_type", "event_name", "user_id", "anonymous_id", "occurred_at",
    "sent_at", "received_at", "payload", "source", "file_checksum", "load_id", "loaded_at",
)  # fmt: skip

# What intermediate models and marts read from staging.
STG_EVENTS_COLUMNS = (
    "message_id", "message_type", "event_name", "event_type", "user_id", "anonymous_id",
    "occurred_at", "received_at", "revenue", "price", "order_id", "product_id",
    "has_analytics_consent",
)  # fmt: skip

FCT_SESSIONS_COLUMNS = (
    "session_id", "user_key", "user_id", "device_id", "started_at", "ended_at",
    "duration_seconds", "event_count", "page_views", "landing_page", "exit_page", "referrer",
    "utm_source", "utm_medium", "utm_campaign", "channel", "device_type", "is_bounce",
    "has_add_to_cart", "has_purchase", "revenue",
)  # fmt: skip

# The features segment rules read.
DIM_USERS_COLUMNS = (
    "user_key", "user_id", "first_seen_at", "last_seen_at", "sessions", "events", "orders",
    "revenue", "revenue_365d", "orders_365d", "last_order_at", "sessions_30d",
    "active_days_30d", "last_cart_add_at", "has_purchase_since_last_cart_add",
    "has_analytics_consent", "as_of",
)  # fmt: skip
# RFM quintile scores, 1 (worst) to 5 (best): being added to dim_users.
DIM_USERS_RFM_SCORES = ("recency_score", "frequency_score", "monetary_score")
DIM_USERS_OPTIONAL = DIM_USERS_RFM_SCORES
RFM_MIN, RFM_MAX = 1, 5

# The shape every seg_ table shares (docs/architecture.md); exports read these.
SEGMENT_COLUMNS = ("user_key", "user_id")

HISTORY_COLUMNS = ("membership_id", "user_key", "segment", "entered_at", "exited_at", "is_current")
