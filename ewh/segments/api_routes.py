"""The segment API, served by the collector app and read from the serving copy only.

- `GET /v1/segments`: every segment with its rule, size and refreshed_at.
- `GET /v1/segments/{name}/members?limit=&cursor=`: members, keyset-paginated by user_key.
- `GET /v1/segments/{name}/changes?since=CURSOR&limit=`: entries and exits after a cursor
  (docs/realtime.md): pass `next_cursor` back as `since`; no `since` starts at the beginning.
- `GET /v1/users/{userId}/segments`: the segments a user is in now, and the user's tags
  (manual ones and the predictions': likely_buyer, churn_risk).
- `GET /v1/segments/{name}/exports/{file}`: a file of the segment's latest export
  (members, entered or exited as .csv or .parquet, or export.json).

Every call needs a read key (or an admin key) as the HTTP Basic user name; the write keys
that apps embed are refused (403), and no key is taken from the query string.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import FileResponse, Response
from starlette.routing import Route

from ewh.collector.http_io import HttpError, json_response
from ewh.collector.keys import Scope
from ewh.collector.responder import endpoint
from ewh.segments.reads import (
    ServingCopyMissing,
    UnknownSegment,
    list_segments,
    resolve_segment,
    segment_changes,
    segment_members,
    user_segments,
)

DEFAULT_PAGE = 100
EXPORT_FILES = {f"{stem}.{suffix}": media for stem in ("members", "entered", "exited")
                for suffix, media in (("csv", "text/csv; charset=utf-8"),
                                      ("parquet", "application/vnd.apache.parquet"))}
EXPORT_FILES["export.json"] = "application/json"


def segment_api_routes() -> list[Route]:
    return [
        Route("/v1/segments", endpoint(_segments, Scope.READ), methods=["GET"]),
        Route("/v1/segments/{name}/members", endpoint(_members, Scope.READ), methods=["GET"]),
        Route("/v1/segments/{name}/changes", endpoint(_changes, Scope.READ), methods=["GET"]),
        Route("/v1/segments/{name}/exports/{file}", endpoint(_export_file, Scope.READ),
              methods=["GET"]),
        Route("/v1/users/{user_id}/segments", endpoint(_user, Scope.READ), methods=["GET"]),
    ]


def _serving(request: Request) -> Path:
    return request.app.state.settings.serving_path


async def _read(function: Any, *args: Any, **kwargs: Any) -> Any:
    """DuckDB reads block: run them off the event loop, and map misses to HTTP answers."""
    try:
        return await run_in_threadpool(function, *args, **kwargs)
    except UnknownSegment as exc:
        raise HttpError(404, "unknown_segment", str(exc)) from exc
    except ServingCopyMissing as exc:  # the message names a path: not for callers
        raise HttpError(503, "not_published",
                        "no serving copy has been published yet: run a refresh") from exc
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


async def _changes(request: Request, request_id: str) -> Response:
    raw_limit = request.query_params.get("limit", str(DEFAULT_PAGE))
    if not raw_limit.isdigit():
        raise HttpError(400, "invalid_request", f"limit must be a positive integer: {raw_limit!r}")
    page = await _read(segment_changes, _serving(request), request.path_params["name"],
                       request.query_params.get("since"), int(raw_limit))
    return json_response(page, 200, request_id)


async def _user(request: Request, request_id: str) -> Response:
    found = await _read(user_segments, _serving(request), request.path_params["user_id"])
    return json_response(found, 200, request_id)


async def _export_file(request: Request, request_id: str) -> Response:
    """A file of the latest export, by the names exports.py writes; nothing else is served."""
    name, file = request.path_params["name"], request.path_params["file"]
    if file not in EXPORT_FILES:
        raise HttpError(404, "unknown_export_file",
                        f"export files are {', '.join(sorted(EXPORT_FILES))}")
    segment = await _read(resolve_segment, _serving(request), name)
    path = request.app.state.settings.exports_dir / segment / file
    if not path.is_file():
        raise HttpError(404, "not_exported", f"{segment} has no {file} yet: run an export")
    return FileResponse(path, media_type=EXPORT_FILES[file],
                        headers={"X-Request-Id": request_id})
