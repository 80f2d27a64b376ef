"""The request/answer cycle every endpoint shares: key, rate limit, body, check, land, answer."""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response

from ewh.collector.access import admit, admitted
from ewh.collector.http_io import HttpError, json_response, ok_response, read_body
from ewh.collector.intake import Intake, IntakeResult
from ewh.collector.keys import Scope, key_from_header
from ewh.common.clock import utc_now

Handler = Callable[[Request, str], Awaitable[Response]]
log = logging.getLogger("ewh.collector")
BODY_KEY = b'"writeKey"'
CHECK_SLICE = 500  # events checked between two yields to the event loop


def endpoint(handler: Handler, scope: Scope) -> Callable[[Request], Awaitable[Response]]:
    """Give a handler a request id, check the header key for `scope` before the body is
    read, and turn HttpError into its JSON answer.

    Only intake (write) endpoints may take the key from the body instead; the handler then
    reads the body and `accept_messages` checks it."""

    async def run(request: Request) -> Response:
        request_id = uuid.uuid4().hex[:16]
        try:
            key = key_from_header(request)
            if key is not None or scope is not Scope.WRITE:
                await admit(request, scope, key)
            return await handler(request, request_id)
        except HttpError as error:
            return error.response(request_id)
        except ClientDisconnect:  # the body timed out or the client left: nobody to answer
            return Response(status_code=400)

    return run


async def read_intake_body(request: Request, limit: int) -> bytes:
    """The body of an intake call; without a header key, it must name a `writeKey`."""
    body = await read_body(request, limit)
    if admitted(request) is None and BODY_KEY not in body:
        await admit(request, Scope.WRITE, None)  # 401 before parsing anything
    return body


async def _check_in_slices(intake: Intake, messages: list[Any], request_id: str,
                           indices: list[int] | None) -> tuple[list[bytes], IntakeResult]:
    """intake.check, yielding to the event loop every CHECK_SLICE events: a 500 KB batch of
    170,000 tiny invalid events takes seconds to check, and other clients must not wait."""
    received_at = utc_now()
    if len(messages) <= CHECK_SLICE:
        return intake.check(messages, received_at, request_id, indices)
    lines: list[bytes] = []
    result = IntakeResult()
    for start in range(0, len(messages), CHECK_SLICE):
        part = messages[start:start + CHECK_SLICE]
        where = (indices[start:start + CHECK_SLICE] if indices is not None
                 else list(range(start, start + len(part))))
        part_lines, part_result = intake.check(part, received_at, request_id, where)
        lines += part_lines
        result.errors += part_result.errors
        result.accepted += part_result.accepted
        await asyncio.sleep(0)
    return lines, result


async def accept_messages(request: Request, request_id: str, messages: list[Any],
                          body_key: Any, *, indices: list[int] | None = None,
                          prior_errors: list[dict[str, Any]] | None = None,
                          total: int | None = None) -> Response:
    """Check and land `messages`; answer 200, or 400 listing the first errors."""
    if admitted(request) is None:
        await admit(request, Scope.WRITE, body_key if isinstance(body_key, str) else None)
    intake: Intake = request.app.state.intake
    lines, result = await _check_in_slices(intake, messages, request_id, indices)
    try:
        await intake.land(lines)
    except Exception as exc:  # noqa: BLE001 - any landing failure: nothing was acknowledged
        log.exception("landing write failed")
        raise HttpError(503, "unavailable", "events could not be stored; retry") from exc
    errors = [*(prior_errors or []), *result.errors]
    if not errors:
        return ok_response(request_id)
    if prior_errors:
        errors.sort(key=lambda e: e["index"])
    count = total if total is not None else len(messages)
    shown = request.app.state.settings.max_listed_errors
    return json_response({
        "success": False, "code": "invalid_events",
        "message": f"{len(errors)} of {count} events are invalid; the {result.accepted} "
                   "valid ones were accepted and stored",
        "accepted": result.accepted, "rejected": len(errors),
        "rejected_by_reason": dict(Counter(e["reason"] for e in errors).most_common()),
        "errors": errors[:shown], "errors_not_listed": max(0, len(errors) - shown),
    }, 400, request_id)
