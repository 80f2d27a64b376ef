"""The closed word lists of the event contract, in one place.

dbt has its own copies where SQL needs them (the `accepted_values` tests of stg_events,
`macros/rules/event_types.sql` and the `event_type_map` seed); a unit test checks that they
say the same as this module.
"""

from __future__ import annotations

# The six Segment message types: one JSON Schema each under schemas/<version>/.
MESSAGE_TYPES = ("track", "identify", "page", "screen", "alias", "group")

# What staging maps every message to (seeds/event_type_map.csv); anything unmapped is OTHER.
CANONICAL_EVENT_TYPES = (
    "page_view", "screen_view", "click", "video_play", "search", "product_view", "add_to_cart",
    "remove_from_cart", "checkout_started", "purchase", "signup", "email_delivered",
    "email_open", "email_click", "experiment_exposure", "consent_updated", "identify", "alias",
)  # fmt: skip
OTHER_EVENT_TYPE = "other"
