"""Consent at intake: does a message carry analytics consent, and what the policy does if not.

Consent is Segment's shape: context.consent.categoryPreferences, category -> boolean; the
`analytics` category, in any case, governs. `granted` needs an explicit true; false is
`denied`; anything else (absent, not a boolean) is `unknown`.
"""

from __future__ import annotations

from typing import Any, Literal

ConsentState = Literal["granted", "denied", "unknown"]
CONSENT_FIELD = "context.consent.categoryPreferences.analytics"


def analytics_consent(message: dict[str, Any]) -> ConsentState:
    context = message.get("context")
    consent = context.get("consent") if isinstance(context, dict) else None
    prefs = consent.get("categoryPreferences") if isinstance(consent, dict) else None
    if not isinstance(prefs, dict):
        return "unknown"
    for key, value in prefs.items():
        if isinstance(key, str) and key.lower() == "analytics" and isinstance(value, bool):
            return "granted" if value else "denied"
    return "unknown"


def flag_consent(message: dict[str, Any], state: ConsentState) -> None:
    """accept_and_flag: mark a message without analytics consent in context.ewh.consent."""
    add_note(message, "consent", state)


def add_note(message: dict[str, Any], key: str, value: str) -> None:
    """The collector's notes on a message go under context.ewh (the contract discounts them
    from the message's size while they stay small)."""
    context = message.get("context")
    if context is None:
        context = message["context"] = {}
    if isinstance(context, dict):  # a non-object context is refused by the contract anyway
        ewh = context.get("ewh")
        if not isinstance(ewh, dict):
            ewh = context["ewh"] = {}
        ewh[key] = value
