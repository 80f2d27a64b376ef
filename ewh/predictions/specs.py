"""The prediction models: what each predicts, for whom, from what, and against which rule.

A model's population, label and baseline are SQL over `intermediate.int_user_features` rows
(one row per user and snapshot date `as_of`); the same population SQL selects who is scored.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

FEATURES_MODEL = "int_user_features"
FEATURES_TABLE = "intermediate.int_user_features"

# Every feature column of int_user_features (its yml describes each); both models read all.
FEATURES: tuple[str, ...] = (
    "days_since_first_seen",
    "days_since_last_seen",
    "active_days_7d",
    "active_days_28d",
    "events_28d",
    "sessions_7d",
    "sessions_28d",
    "events_per_session_28d",
    "product_views_7d",
    "product_views_28d",
    "cart_adds_7d",
    "cart_adds_28d",
    "checkouts_28d",
    "searches_28d",
    "days_since_last_cart_add",
    "has_open_cart",
    "orders",
    "orders_90d",
    "days_since_last_order",
    "revenue_365d",
    "emails_delivered_28d",
    "emails_opened_28d",
)

# HistGradientBoostingClassifier settings: small trees keep scoring fast (the contributions
# walk every tree), no early stopping (it would draw a random validation split).
MODEL_PARAMS: dict[str, Any] = {
    "max_iter": 150,
    "learning_rate": 0.08,
    "max_leaf_nodes": 8,
    "min_samples_leaf": 40,
    "l2_regularization": 1.0,
    "early_stopping": False,
}

TOP_FEATURES = 3  # features named per scored user, most contributing first


@dataclass(frozen=True)
class ModelSpec:
    name: str
    description: str
    horizon_days: int  # the label looks this many days past the snapshot date
    outcome: Literal["order", "no_activity"]  # the label (labels.py)
    population: str  # SQL over feature rows: who is trained on and scored
    label: str  # what the label means, in words (labels.py computes it)
    baseline: str  # SQL over feature rows: the rule's score, higher = more likely
    baseline_description: str
    tag: str  # the user tag members of `segment` get
    segment: str
    features: tuple[str, ...] = field(default=FEATURES)


PURCHASE = ModelSpec(
    name="purchase",
    description="The chance that an identified user orders in the next 14 days.",
    horizon_days=14,
    outcome="order",
    population="has_analytics_consent",
    label="an order (int_orders, not cancelled) in the 14 days after the snapshot date",
    baseline="coalesce(rfm_recency_score, 0)",
    baseline_description="RFM recency score (1-5 for customers, 0 for everyone else)",
    tag="likely_buyer",
    segment="seg_likely_buyers",
)

CHURN = ModelSpec(
    name="churn",
    description="The chance that a user active in the last 28 days has no user-initiated "
    "activity in the next 28 days.",
    horizon_days=28,
    outcome="no_activity",
    population="has_analytics_consent and active_days_28d > 0",
    label="no user-initiated event in the 28 days after the snapshot date",
    baseline="days_since_last_seen",
    baseline_description="days since the last user-initiated event",
    tag="churn_risk",
    segment="seg_predicted_churn",
)

MODELS: dict[str, ModelSpec] = {spec.name: spec for spec in (PURCHASE, CHURN)}
