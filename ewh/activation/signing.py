"""Webhook signatures, the way Stripe signs: `Ewh-Signature: t=<unix seconds>,v1=<hex>`.

v1 is HMAC-SHA256, keyed with the subscriber's secret, over `<t>.<raw body>`. A receiver
recomputes it over the bytes it got, compares in constant time and refuses a `t` older than
its tolerance (a replayed request). Each attempt is signed afresh with its own time.
"""

from __future__ import annotations

import hashlib
import hmac

SIGNATURE_HEADER = "Ewh-Signature"
TIMESTAMP_HEADER = "Ewh-Timestamp"
IDEMPOTENCY_HEADER = "Idempotency-Key"
DEFAULT_TOLERANCE_SECONDS = 300


def signature(secret: str, timestamp: int, body: bytes) -> str:
    message = str(timestamp).encode() + b"." + body
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def signature_header(secret: str, timestamp: int, body: bytes) -> str:
    return f"t={timestamp},v1={signature(secret, timestamp, body)}"


def verify(secret: str, header: str, body: bytes, now: float,
           tolerance: float = DEFAULT_TOLERANCE_SECONDS) -> bool:
    """What a receiver runs: any v1 matches and t is within `tolerance` of `now`."""
    parts = [p.split("=", 1) for p in header.split(",") if "=" in p]
    stamps = [v for k, v in parts if k.strip() == "t"]
    if len(stamps) != 1 or not stamps[0].strip().isdigit():
        return False
    timestamp = int(stamps[0])
    if abs(now - timestamp) > tolerance:
        return False
    expected = signature(secret, timestamp, body)
    return any(hmac.compare_digest(expected, v.strip()) for k, v in parts if k.strip() == "v1")
