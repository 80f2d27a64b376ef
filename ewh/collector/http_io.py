"""HTTP plumbing of the collector: bounded (and gzip) bodies and JSON answers."""

from __future__ import annotations

import zlib
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response

from ewh.contract import json_text

OK_BODY = b'{"success":true}'


class HttpError(Exception):
    """A whole-request failure, answered as {"success": false, "code", "message"}."""

    def __init__(self, status: int, code: str, message: str,
                 headers: dict[str, str] | None = None, **extra: Any) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.extra = status, code, message, extra
        self.headers = headers or {}

    def response(self, request_id: str) -> Response:
        body = {"success": False, "code": self.code, "message": self.message, **self.extra}
        return json_response(body, self.status, request_id, self.headers)


def json_response(body: Any, status: int, request_id: str,
                  headers: dict[str, str] | None = None) -> Response:
    return Response(orjson.dumps(body), status, media_type="application/json",
                    headers={"X-Request-Id": request_id, **(headers or {})})


def ok_response(request_id: str) -> Response:
    return Response(OK_BODY, 200, media_type="application/json",
                    headers={"X-Request-Id": request_id})


async def read_body(request: Request, limit: int) -> bytes:
    """The request body, gunzipped when Content-Encoding says so, at most `limit` bytes.

    Larger bodies are answered 413 without reading them whole; decompression stops at the
    limit too, so a small gzip bomb cannot expand in memory.
    """
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise _too_large(int(declared), limit)
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise _too_large(size, limit)
        chunks.append(chunk)
    body = b"".join(chunks)
    encoding = request.headers.get("content-encoding", "").strip().lower()
    if encoding in ("", "identity"):
        return body
    if encoding != "gzip":
        raise HttpError(415, "unsupported_encoding",
                        f"Content-Encoding {encoding!r} is not supported; use gzip or none.")
    inflater = zlib.decompressobj(wbits=31)
    try:
        plain = inflater.decompress(body, limit + 1)
    except zlib.error as exc:
        raise HttpError(400, "invalid_gzip", f"the gzip body cannot be decompressed: {exc}") \
            from exc
    if len(plain) > limit or inflater.unconsumed_tail:
        raise _too_large(len(plain), limit)
    if not inflater.eof:
        raise HttpError(400, "invalid_gzip", "the gzip body is truncated")
    return plain


def _too_large(size: int, limit: int) -> HttpError:
    return HttpError(413, "payload_too_large",
                     f"the request body is over {limit} bytes ({size} or more); Segment's "
                     "limits are 32 KB per message and 500 KB per batch")


def parse_json_object(body: bytes) -> dict[str, Any]:
    value = parse_json(body)
    if not isinstance(value, dict):
        raise HttpError(400, "invalid_request", "the body must be a JSON object")
    return value


def parse_json(body: bytes) -> Any:
    """The body parsed by the contract's rules, as the loader reads files (duplicate keys:
    the first wins; numbers orjson cannot hold kept as json_text.Literal: write messages with
    json_text.dumps, which puts them back as they were sent)."""
    try:
        return json_text.loads(body)
    except ValueError as exc:
        raise HttpError(400, "invalid_json", f"the body is not valid JSON: {exc}") from exc
