"""The request/answer cycle every intake endpoint shares: auth, check, land, answer."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from ewh.collector.http_io import (
    HttpError,
    authenticate,
    json_response,
    ok_response,
    write_key_from_header,
)
from ewh.collector.intake import Intake
from ewh.common.clock import utc_now

Handler = Callable[[Request, str], Awaitable[Response]]
log = logging.getLogger("ewh.collector")


def endpoint(handler: Handler) -> Callable[[Request], Awaitable[Response]]:
    """Give a handler a request id, and turn HttpError into its JSON answer."""

    async def run(request: Request) -> Response:
        request_id = uuid.uuid4().hex[:16]
        try:
            header_key = write_key_from_header(request)
            if header_key is not None and header_key not in request.app.state.settings.write_keys:
                raise HttpError(401, "unauthorized", "the write key is not valid")
            return await handler(request, request_id)
        except HttpError as error:
            return error.response(request_id)

    return run


async def accept_messages(request: Request, request_id: str, messages: list[Any],
                          body_key: Any, *, indices: list[int] | None = None,
                          prior_errors: list[dict[str, Any]] | None = None,
                          total: int | None = None) -> Response:
    """Authenticate, check and land `messages`; answer 200, or 400 listing each error."""
    authenticate(request, body_key, request.app.state.settings.write_keys)
    intake: Intake = request.app.state.intake
    lines, result = intake.check(messages, utc_now(), request_id, indices)
    try:
        await intake.land(lines)
    except Exception as exc:  # noqa: BLE001 - any landing failure: nothing was acknowledged
        log.exception("landing write failed")
        raise HttpError(503, "unavailable", f"events could not be stored ({exc}); retry") \
            from exc
    errors = sorted([*(prior_errors or []), *result.errors], key=lambda e: e["index"])
    if not errors:
        return ok_response(request_id)
    count = total if total is not None else len(messages)
    return json_response({
        "success": False, "code": "invalid_events",
        "message": f"{len(errors)} of {count} events are invalid; the {result.accepted} "
                   "valid ones were accepted and stored",
        "accepted": result.accepted, "rejected": len(errors), "errors": errors,
    }, 400, request_id)
