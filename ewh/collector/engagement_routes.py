"""The engagement API of the tracking-endpoints brief, mapped onto Segment messages.

- POST /api/engagement/{event_type}: one event, e.g. click or video-play.
- POST /api/engagement/events: up to 100 events, `{"events": [...]}` or a bare array, each
  naming its `eventType`.
- PUT /api/users/{userId}/tags: the user's manual tags, which become an identify.

Mapping (names the dbt staging seed already knows):
  click      -> track "Element Clicked"          (canonical click)
  video-play -> track "Video Playback Started"   (canonical video_play)
  search     -> track "Products Searched"        (canonical search)
  signup     -> track "Signed Up"                (canonical signup)
  tags       -> identify with traits.tags (and traits.tags_source)
campaignId -> properties.campaign_id and context.campaign.id; elementId -> properties.element_id;
deviceType -> context.device.type; variant -> properties.variant; extra `properties` pass
through; `consent: {"analytics": bool}` -> context.consent.categoryPreferences.analytics.

messageId: the client's `messageId` (or `eventId`) if sent; else derived from the event's
content, so a retried request is the same event and the loader keeps it once.
"""

from __future__ import annotations

import hashlib
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from ewh.collector.http_io import HttpError, parse_json, parse_json_object
from ewh.collector.intake import MAX_WRITABLE_DEPTH
from ewh.collector.keys import Scope
from ewh.collector.responder import accept_messages, endpoint, read_intake_body
from ewh.common.clock import utc_now
from ewh.contract.validator import json_kind

ENGAGEMENT_EVENTS = {
    "click": "Element Clicked",
    "video-play": "Video Playback Started",
    "search": "Products Searched",
    "signup": "Signed Up",
}
LIBRARY = {"name": "ewh-engagement-api", "version": "1"}
MAX_TAGS = 100


def engagement_routes() -> list[Route]:
    return [
        Route("/api/engagement/events", endpoint(_events, Scope.WRITE), methods=["POST"]),
        Route("/api/engagement/{event_type}", endpoint(_one, Scope.WRITE), methods=["POST"]),
        Route("/api/users/{user_id}/tags", endpoint(_tags, Scope.WRITE), methods=["PUT"]),
    ]


class _Invalid(Exception):
    def __init__(self, reason: str, field: str, expectation: str,
                 seen: str | None = None) -> None:
        super().__init__(expectation)
        self.reason, self.field, self.expectation = reason, field, expectation
        self.seen = seen  # what was found, when the field's value cannot say it


async def _one(request: Request, request_id: str) -> Response:
    settings = request.app.state.settings
    body = parse_json_object(await read_intake_body(request, settings.max_message_bytes))
    body.setdefault("eventType", request.path_params["event_type"])
    return await _accept(request, request_id, [body], body.get("writeKey"))


async def _events(request: Request, request_id: str) -> Response:
    settings = request.app.state.settings
    payload = parse_json(await read_intake_body(request, settings.max_batch_bytes))
    events = payload.get("events") if isinstance(payload, dict) else payload
    if not isinstance(events, list) or not events:
        raise HttpError(400, "invalid_request",
                        "expected a non-empty array of events, or {\"events\": [...]}")
    if len(events) > settings.max_engagement_batch:
        raise HttpError(413, "too_many_events", f"{len(events)} events in one call; at most "
                                                f"{settings.max_engagement_batch}")
    key = payload.get("writeKey") if isinstance(payload, dict) else None
    return await _accept(request, request_id, events, key)


async def _accept(request: Request, request_id: str, events: list[Any],
                  body_key: Any) -> Response:
    messages, indices, errors = [], [], []
    for index, event in enumerate(events):
        try:
            messages.append(engagement_message(event))
            indices.append(index)
        except _Invalid as invalid:
            errors.append(_error(index, event, request_id, invalid))
    return await accept_messages(request, request_id, messages, body_key, indices=indices,
                                 prior_errors=errors, total=len(events))


async def _tags(request: Request, request_id: str) -> Response:
    settings = request.app.state.settings
    body = parse_json_object(await read_intake_body(request, settings.max_message_bytes))
    try:
        message = tags_message(request.path_params["user_id"], body)
    except _Invalid as invalid:
        return await accept_messages(request, request_id, [], body.get("writeKey"),
                                     prior_errors=[_error(0, body, request_id, invalid)],
                                     total=1)
    return await accept_messages(request, request_id, [message], body.get("writeKey"))


def engagement_message(event: Any) -> dict[str, Any]:
    """The Segment track message for one engagement event (raises _Invalid)."""
    if not isinstance(event, dict):
        raise _Invalid("not_an_object", "", "expected a JSON object")
    event_type = _string(event, "eventType", required=False) or _string(event, "type")
    name = ENGAGEMENT_EVENTS.get(event_type or "")
    if name is None:
        raise _Invalid("unknown_event_type", "eventType",
                       f"expected one of {', '.join(ENGAGEMENT_EVENTS)}")
    user_id = _string(event, "userId", required=False)
    anonymous_id = _string(event, "anonymousId", required=False)
    if not user_id and not anonymous_id:
        raise _Invalid("missing_field", "userId", "expected a non-empty string")
    campaign_id = _string(event, "campaignId")
    element_id = _string(event, "elementId", required=event_type == "click")
    _string(event, "timestamp")  # the contract then checks it is ISO-8601 with a timezone
    device_type = _string(event, "deviceType", required=False)
    extra = event.get("properties")
    if extra is not None and not isinstance(extra, dict):
        raise _Invalid("wrong_type", "properties", "expected a JSON object")
    properties = {**(extra or {}), "campaign_id": campaign_id, "engagement_type": event_type}
    if element_id:
        properties["element_id"] = element_id
    if event.get("variant") is not None:
        properties["variant"] = event["variant"]
    context: dict[str, Any] = {"campaign": {"id": campaign_id}, "library": LIBRARY}
    if device_type:
        context["device"] = {"type": device_type}
    _consent(event, context)
    message = {"type": "track", "event": name, "userId": user_id, "anonymousId": anonymous_id,
               "timestamp": event["timestamp"], "properties": properties, "context": context}
    message["messageId"] = _message_id("eng", event, {k: v for k, v in event.items()
                                                      if k != "writeKey"})
    return {k: v for k, v in message.items() if v is not None}


def tags_message(user_id: str, body: dict[str, Any]) -> dict[str, Any]:
    """The identify that carries a user's manual tags (raises _Invalid)."""
    tags = body.get("tags")
    if not isinstance(tags, list):
        raise _Invalid("missing_field" if tags is None else "wrong_type", "tags",
                       "expected an array of strings")
    if len(tags) > MAX_TAGS or not all(isinstance(t, str) and t.strip() for t in tags):
        raise _Invalid("wrong_type", "tags", f"expected at most {MAX_TAGS} non-empty strings")
    timestamp = _string(body, "timestamp", required=False) or utc_now().isoformat() + "Z"
    source = _string(body, "source", required=False) or "manual"
    context: dict[str, Any] = {"library": LIBRARY}
    _consent(body, context)
    message = {"type": "identify", "userId": user_id, "timestamp": timestamp,
               "traits": {"tags": tags, "tags_source": source}, "context": context}
    # The timestamp is part of the identity: setting the same tags again later is a new event.
    message["messageId"] = _message_id("tags", body, {"userId": user_id, "tags": tags,
                                                      "timestamp": timestamp})
    return message


def _string(event: dict[str, Any], name: str, *, required: bool = True) -> str | None:
    value = event.get(name)
    if value is None or value == "":
        if required:
            raise _Invalid("missing_field", name, "expected a non-empty string")
        return None
    if not isinstance(value, str):
        raise _Invalid("wrong_type", name, "expected a string")
    return value


def _consent(event: dict[str, Any], context: dict[str, Any]) -> None:
    consent = event.get("consent")
    if isinstance(consent, dict) and isinstance(consent.get("analytics"), bool):
        context["consent"] = {"categoryPreferences": {"analytics": consent["analytics"]}}


def _message_id(prefix: str, event: dict[str, Any], content: dict[str, Any]) -> str:
    given = event.get("messageId") or event.get("eventId")
    if isinstance(given, str) and given:
        return given
    try:
        text = orjson.dumps(content, option=orjson.OPT_SORT_KEYS)
    except orjson.JSONEncodeError as exc:  # nested deeper than orjson writes: this event only
        raise _Invalid("too_deep", "", "expected a shallower JSON object",
                       seen=f"nested deeper than {MAX_WRITABLE_DEPTH} levels") from exc
    return f"{prefix}-{hashlib.sha256(text).hexdigest()[:32]}"


def _error(index: int, event: Any, request_id: str, invalid: _Invalid) -> dict[str, Any]:
    where = f"field `{invalid.field}`" if invalid.field else "the event"
    return {"index": index, "messageId": None, "reason": invalid.reason,
            "field": invalid.field or None,
            "detail": f"Record request {request_id} event {index}: {where} is "
                      f"{invalid.seen or _shown(event, invalid.field)}, "
                      f"{invalid.expectation}."}


def _shown(event: Any, field: str) -> str:
    if not isinstance(event, dict):
        return "not an object"
    value = event.get(field)
    if value is None:
        return "missing"
    if not isinstance(value, str):
        return f"a {json_kind(value)}"  # never re-serialise a client's nested value
    return orjson.dumps(value).decode()[:80]
