"""The segment API, served by the collector app and read from the serving copy only.

- `GET /v1/segments`: every segment with its rule, size and refreshed_at.
- `GET /v1/segments/{name}/members?limit=&cursor=`: members, keyset-paginated by user_key.
- `GET /v1/users/{userId}/segments`: the segments a user is in now, and the user's tags
  (manual ones and the predictions': likely_buyer, churn_risk).

Auth is the collector's: the write key as the HTTP Basic user name (or `?writeKey=`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from ewh.collector.http_io import HttpError, authenticate, json_response
from ewh.collector.responder import endpoint
from ewh.segments.reads import (
    ServingCopyMissing,
    UnknownSegment,
    list_segments,
    segment_members,
    user_segments,
)

DEFAULT_PAGE = 100


def segment_api_routes() -> list[Route]:
    return [
        Route("/v1/segments", endpoint(_segments), methods=["GET"]),
        Route("/v1/segments/{name}/members", endpoint(_members), methods=["GET"]),
        Route("/v1/users/{user_id}/segments", endpoint(_user), methods=["GET"]),
    ]


def _serving(request: Request) -> Path:
    authenticate(request, request.query_params.get("writeKey"),
                 request.app.state.settings.write_keys)
    return request.app.state.settings.serving_path


async def _read(function: Any, *args: Any, **kwargs: Any) -> Any:
    """DuckDB reads block: run them off the event loop, and map misses to HTTP answers."""
    try:
        return await run_in_threadpool(function, *args, **kwargs)
    except UnknownSegment as exc:
        raise HttpError(404, "unknown_segment", str(exc)) from exc
    except ServingCopyMissing as exc:
        raise HttpError(503, "not_published", str(exc)) from exc
    except ValueError as exc:
        raise HttpError(400, "invalid_request", str(exc)) from exc


async def _segments(request: Request, request_id: str) -> Response:
    segments = await _read(list_segments, _serving(request))
    return json_response({"segments": segments}, 200, request_id)


async def _members(request: Request, request_id: str) -> Response:
    serving = _serving(request)
    raw_limit = request.query_params.get("limit", str(DEFAULT_PAGE))
    if not raw_limit.isdigit():
        raise HttpError(400, "invalid_request", f"limit must be a positive integer: {raw_limit!r}")
    page = await _read(segment_members, serving, request.path_params["name"],
                       limit=int(raw_limit), cursor=request.query_params.get("cursor"))
    return json_response({"segment": page.segment, "members": page.members,
                          "next_cursor": page.next_cursor}, 200, request_id)


async def _user(request: Request, request_id: str) -> Response:
    found = await _read(user_segments, _serving(request), request.path_params["user_id"])
    return json_response(found, 200, request_id)
