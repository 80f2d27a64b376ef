"""Subject and stream names, and creating the streams (idempotent).

- `ewh.events.<type>` (stream EWH_EVENTS): every acknowledged event, after it is durable in
  its landing file; the message id is the event's messageId (JetStream's dedupe key).
- `ewh.segments.<segment>.<entered|exited>` (stream EWH_SEGMENT_CHANGES): every membership
  change; the message id is the change id.
"""

from __future__ import annotations

from nats.js import JetStreamContext
from nats.js.api import StreamConfig
from nats.js.errors import NotFoundError

EVENTS_STREAM = "EWH_EVENTS"
EVENTS_PREFIX = "ewh.events"
CHANGES_STREAM = "EWH_SEGMENT_CHANGES"
CHANGES_PREFIX = "ewh.segments"
LOADER_CONSUMER = "ewh_loader"  # the durable consumer `ewh stream consume` reads with
MSG_ID = "Nats-Msg-Id"
_SAFE = str.maketrans({c: "_" for c in ".*> \t\r\n"})


def event_subject(message_type: str) -> str:
    return f"{EVENTS_PREFIX}.{message_type.translate(_SAFE) or 'unknown'}"


def change_subject(segment: str, change: str) -> str:
    return f"{CHANGES_PREFIX}.{segment.translate(_SAFE)}.{change}"


DEFAULT_MAX_AGE_SECONDS = 7 * 86400.0


async def ensure_streams(js: JetStreamContext, duplicate_window_seconds: float,
                         max_age_seconds: float = DEFAULT_MAX_AGE_SECONDS) -> None:
    """Create both streams, or bring their dedupe window and retention to the settings.
    Messages older than `max_age_seconds` are dropped (EWH_STREAM_MAX_AGE_SECONDS)."""
    for name, prefix in ((EVENTS_STREAM, EVENTS_PREFIX), (CHANGES_STREAM, CHANGES_PREFIX)):
        config = StreamConfig(name=name, subjects=[f"{prefix}.>"],
                              duplicate_window=min(duplicate_window_seconds, max_age_seconds),
                              max_age=max_age_seconds)
        try:
            await js.stream_info(name)
        except NotFoundError:
            await js.add_stream(config)
        else:
            await js.update_stream(config)
