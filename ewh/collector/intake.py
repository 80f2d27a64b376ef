"""From accepted-for-checking messages to durable landing lines: one path for every endpoint.

Each message is stamped (receivedAt by the server), checked by the event contract
(ewh.contract.validator, the same rules the loader runs as SQL), put through the consent
policy, and the valid ones of a request are landed together with one durable append.

Mixed batches: the valid events of a request are landed even when others are invalid; the
answer is then 400 with the errors of the invalid events (index, messageId, reason, field,
detail; the responder lists the first 100) and how many were accepted. Resending the whole
batch is safe: the loader keeps one row per messageId. A message without messageId gets one
here, as Segment does (it then loses idempotency), and an event that cannot be written back
as JSON is refused alone: bad input is never a 5xx.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import orjson

from ewh.collector.consent import CONSENT_FIELD, add_note, analytics_consent, flag_consent
from ewh.collector.settings import CollectorSettings
from ewh.contract import json_text
from ewh.contract.validator import Rejection, rejection_of, unwritable
from ewh.ingest.landing import LandingWriter
from ewh.privacy.keys import PrivacyKeys
from ewh.privacy.policy import Protector
from ewh.stream.publisher import EventPublisher


@dataclass(slots=True)
class IntakeResult:
    accepted: int = 0
    errors: list[dict[str, Any]] = field(default_factory=list)


MAX_WRITABLE_DEPTH = 254  # orjson.dumps refuses deeper values


def iso_utc(moment: datetime) -> str:
    """A naive UTC datetime as ISO-8601 with milliseconds and Z, as Segment writes it."""
    return moment.isoformat(timespec="milliseconds") + "Z"


class Intake:
    def __init__(self, settings: CollectorSettings, writer: LandingWriter) -> None:
        self.settings = settings
        self.writer = writer
        self.protector = Protector(settings.privacy or PrivacyKeys.from_settings())
        # Set by the app when EWH_NATS_URL is: durable lines go on to the event stream.
        self.publisher: EventPublisher | None = None

    def check(self, messages: list[Any], received_at: datetime, request_id: str,
              indices: list[int] | None = None, *,
              consent_statement: bool = False) -> tuple[list[bytes], IntakeResult]:
        """The landing lines of the valid messages, and an error for each invalid one.

        `indices` gives each message's position in the request when some were set aside
        before (the engagement API's own checks); errors name that position."""
        received = iso_utc(received_at)
        # A consent statement (the consent API) is landed whatever it says: it is the record.
        reject_unconsented = self.settings.consent_policy == "reject" and not consent_statement
        lines: list[bytes] = []
        result = IntakeResult()
        server_ids = ""  # one random prefix per call, then the event's index: unique, cheap
        floor, protect = self.settings.timestamp_floor, self.protector.protect
        for position, message in enumerate(messages):
            index = indices[position] if indices is not None else position
            source = f"request {request_id} event {index}"
            consent: str = "granted"
            if isinstance(message, dict):
                message.pop("writeKey", None)  # never land a credential
                if message.get("messageId") is None:
                    # As Segment does; such an event loses idempotency: a retry is a new event.
                    server_ids = server_ids or f"srv-{uuid.uuid4().hex}-"
                    message["messageId"] = f"{server_ids}{index}"
                    add_note(message, "messageId", "generated")
                message["receivedAt"] = received
                consent = analytics_consent(message)
                if consent != "granted" and not reject_unconsented:
                    flag_consent(message, consent)
            try:
                line = json_text.dumps(message)
            except orjson.JSONEncodeError:  # nested past orjson's limit: the contract's too
                result.errors.append(_error(index, unwritable(message, source)))
                continue
            rejection = rejection_of(message, line, source, received_at, floor=floor)
            if rejection is not None:
                result.errors.append(_error(index, rejection))
            elif consent != "granted" and reject_unconsented:
                result.errors.append(_consent_error(index, message, source, consent))
            else:
                # Checked as sent (the loader checks files as written, the same verdict);
                # landed with nothing personal in the clear (ewh.privacy.policy): written
                # again only when the policy changed something.
                lines.append(json_text.dumps(message) if protect(message) else line)
        result.accepted = len(lines)
        return lines, result

    async def land(self, lines: list[bytes]) -> None:
        if lines:
            await self.writer.append(b"\n".join(lines) + b"\n")
            if self.publisher is not None:
                self.publisher.offer(lines)  # after they are durable; never blocks


def _error(index: int, rejection: Rejection) -> dict[str, Any]:
    return {"index": index, "messageId": rejection.message_id, "reason": rejection.reason,
            "field": rejection.field, "detail": rejection.detail}


def _consent_error(index: int, message: dict[str, Any], source: str,
                   state: str) -> dict[str, Any]:
    message_id = message.get("messageId") if isinstance(message.get("messageId"), str) else None
    label = f"Record {source}" + (f" (messageId {message_id})" if message_id else "")
    seen = "false" if state == "denied" else "missing"
    return {"index": index, "messageId": message_id, "reason": "consent_required",
            "field": CONSENT_FIELD,
            "detail": f"{label}: field `{CONSENT_FIELD}` is {seen}, expected true "
                      "(EWH_CONSENT_POLICY=reject refuses events without analytics consent)."}
