"""The Segment HTTP Tracking API: /v1/track, identify, page, screen, group, alias and batch.

An existing Segment SDK works by changing only its host. The write key comes as the HTTP
Basic user name or as `writeKey` in the body; bodies may be gzip'ed; a single call may carry
32 KB, a batch 500 KB (413 beyond). A batch's top-level `sentAt`, `context` and
`integrations` apply to each of its messages, as in Segment. analytics.js (analytics-next)
posts to the short paths: /v1/t, /v1/p, /v1/i, /v1/s, /v1/g, /v1/a and /v1/b.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from ewh.collector.http_io import HttpError, parse_json_object
from ewh.collector.keys import Scope
from ewh.collector.responder import accept_messages, endpoint, read_intake_body
from ewh.contract.vocabulary import MESSAGE_TYPES

# analytics.js's short paths: the first letter of each type; b is batch.
SHORT_PATHS = {"track": "t", "page": "p", "identify": "i", "screen": "s", "group": "g",
               "alias": "a"}


def tracking_routes() -> list[Route]:
    batch = endpoint(_batch, Scope.WRITE)  # first: the busiest path is matched first
    routes = [Route(f"/v1/{path}", batch, methods=["POST"])
              for path in ("batch", "b", "import")]  # import: Segment's alias of batch
    for name in MESSAGE_TYPES:
        handle = endpoint(_single(name), Scope.WRITE)
        routes.append(Route(f"/v1/{name}", handle, methods=["POST"]))
        routes.append(Route(f"/v1/{SHORT_PATHS[name]}", handle, methods=["POST"]))
    return routes


def _single(message_type: str):  # type: ignore[no-untyped-def]
    async def handle(request: Request, request_id: str) -> Response:
        settings = request.app.state.settings
        message = parse_json_object(await read_intake_body(request, settings.max_message_bytes))
        message["type"] = message_type  # the endpoint decides the type, as in Segment
        return await accept_messages(request, request_id, [message], message.get("writeKey"))

    return handle


async def _batch(request: Request, request_id: str) -> Response:
    settings = request.app.state.settings
    payload = parse_json_object(await read_intake_body(request, settings.max_batch_bytes))
    batch = payload.get("batch")
    if not isinstance(batch, list):
        raise HttpError(400, "invalid_request", "`batch` must be an array of messages")
    if not batch:
        raise HttpError(400, "invalid_request", "`batch` is empty")
    for message in batch:
        if isinstance(message, dict):
            _apply_batch_fields(payload, message)
    return await accept_messages(request, request_id, batch, payload.get("writeKey"))


def _apply_batch_fields(payload: dict[str, Any], message: dict[str, Any]) -> None:
    if "sentAt" not in message and "sentAt" in payload:
        message["sentAt"] = payload["sentAt"]
    for name in ("context", "integrations"):
        shared = payload.get(name)
        if isinstance(shared, dict):
            own = message.get(name)
            message[name] = {**shared, **own} if isinstance(own, dict) else (
                own if own is not None else dict(shared))
