"""A person's rights over their data: erasure and consent (docs/privacy.md).

- `DELETE /api/users/{userId}` (admin keys only): erase the person everywhere, now
  (ewh.privacy.erasure); the answer names the receipt and the verification scan's result.
  The open landing file is closed first, so the erasure can rewrite it.
- `GET /api/users/{userId}/consent` (admin or consent keys): the consent the warehouse last
  published (the serving copy's marts.dim_users): every category of the user's latest
  statement, analytics as the segments apply it, and when it was stated.
- `PUT /api/users/{userId}/consent` (admin or consent keys), body
  `{"categoryPreferences": {"analytics": false, ...}}`: stored as a `Consent Updated` track
  event through the same landing path as every event (so it is audited and replayable);
  segments, exports and the segment API follow it at the next refresh.
"""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import duckdb
import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from ewh.collector.http_io import HttpError, json_response, read_body
from ewh.collector.intake import Intake, iso_utc
from ewh.collector.keys import Scope
from ewh.collector.responder import endpoint
from ewh.common.clock import utc_now
from ewh.ingest.landing import LandingWriter

MAX_CONSENT_BODY = 16 * 1024
MAX_CATEGORIES = 50


def privacy_routes() -> list[Route]:
    return [
        Route("/api/users/{user_id}/consent", endpoint(_get_consent, Scope.CONSENT),
              methods=["GET"]),
        Route("/api/users/{user_id}/consent", endpoint(_put_consent, Scope.CONSENT),
              methods=["PUT"]),
        Route("/api/users/{user_id}", endpoint(_delete_user, Scope.ADMIN),
              methods=["DELETE"]),
    ]


def _user_id(request: Request) -> str:
    user_id = str(request.path_params["user_id"])
    if not user_id.strip() or len(user_id) > 1024:
        raise HttpError(400, "invalid_user_id", "the userId in the path is empty or too long")
    return user_id


async def _delete_user(request: Request, request_id: str) -> Response:
    from ewh.privacy.erasure import UnknownUser, erase_user

    user_id = _user_id(request)
    writer: LandingWriter = request.app.state.writer
    await writer.rotate()  # the open file becomes a closed one the erasure can rewrite
    try:
        result = await asyncio.to_thread(erase_user, user_id)
    except UnknownUser as exc:
        raise HttpError(404, "unknown_user", str(exc)) from exc
    except duckdb.IOException as exc:  # the warehouse is locked by a refresh
        raise HttpError(503, "warehouse_busy", "the warehouse is being written by a refresh; "
                        "retry later", headers={"Retry-After": "60"}) from exc
    receipt = result.receipt
    return json_response({
        "erased": True,
        "erasureId": receipt["erasure_id"],
        "subjectHash": receipt["subject_hash"],
        "idsErased": receipt["ids_erased"],
        "receipt": result.receipt_path.name,
        "verification": {"clean": receipt["verification"]["clean"],
                         "filesScanned": receipt["verification"]["files_scanned"]},
    }, 200, request_id)


async def _get_consent(request: Request, request_id: str) -> Response:
    user_id = _user_id(request)
    serving = request.app.state.settings.serving_path
    try:
        row = await asyncio.to_thread(_published_consent, serving, user_id)
    except FileNotFoundError as exc:
        raise HttpError(503, "no_serving_copy", "no serving copy yet: run a refresh") from exc
    if row is None:
        raise HttpError(404, "unknown_user", f"no user {user_id!r} in the serving copy")
    consent, categories, stated_at = row
    preferences = _stated_categories(categories)
    preferences["analytics"] = consent  # as segments apply it (true when never stated)
    return json_response({"userId": user_id, "categoryPreferences": preferences,
                          "statedAt": stated_at.isoformat() if stated_at else None,
                          "source": "serving copy (changes apply at the next refresh)"},
                         200, request_id)


def _published_consent(serving: Any, user_id: str) -> tuple[bool, str | None, Any] | None:
    if not serving.exists():
        raise FileNotFoundError(serving)
    with duckdb.connect(str(serving), read_only=True) as con:
        rows = con.execute("select has_analytics_consent, consent_categories, consent_stated_at "
                           "from marts.dim_users where user_id = ? "
                           "order by consent_stated_at desc nulls last limit 1",
                           [user_id]).fetchall()
    return (bool(rows[0][0]), rows[0][1], rows[0][2]) if rows else None


def _stated_categories(text: str | None) -> dict[str, bool]:
    """The categories of the latest statement that are true or false. Any event may have
    stated them, so anything else (not JSON, not an object, other values) is left out; the
    analytics key, matched in any case, is replaced by the status the warehouse applies."""
    try:
        parsed = orjson.loads(text) if text else None
    except orjson.JSONDecodeError:
        return {}
    if not isinstance(parsed, dict):
        return {}
    return {str(name): value for name, value in parsed.items()
            if isinstance(value, bool) and str(name).lower() != "analytics"}


def _preferences(body: bytes) -> dict[str, bool]:
    try:
        parsed = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise HttpError(400, "invalid_json", f"the body is not JSON: {exc}") from exc
    prefs = parsed.get("categoryPreferences") if isinstance(parsed, dict) else None
    if not isinstance(prefs, dict) or not prefs:
        raise HttpError(400, "invalid_consent", "field `categoryPreferences`: expected a "
                        "non-empty object of category -> true/false")
    if len(prefs) > MAX_CATEGORIES:
        raise HttpError(400, "invalid_consent", f"field `categoryPreferences`: at most "
                        f"{MAX_CATEGORIES} categories")
    for name, value in prefs.items():
        if not isinstance(value, bool) or not name.strip():
            raise HttpError(400, "invalid_consent", f"field `categoryPreferences.{name}`: "
                            "expected true or false")
    return prefs


async def _put_consent(request: Request, request_id: str) -> Response:
    user_id = _user_id(request)
    prefs = _preferences(await read_body(request, MAX_CONSENT_BODY))
    now = utc_now()
    message_id = f"consent-{uuid.uuid4().hex}"
    message = {"type": "track", "event": "Consent Updated", "messageId": message_id,
               "userId": user_id, "timestamp": iso_utc(now), "sentAt": iso_utc(now),
               "context": {"consent": {"categoryPreferences": prefs}},
               "properties": {"source": "consent_api"}}
    intake: Intake = request.app.state.intake
    lines, result = intake.check([message], now, request_id, consent_statement=True)
    if result.errors:
        raise HttpError(400, "invalid_consent", result.errors[0]["detail"])
    await intake.land(lines)
    return json_response({"userId": user_id, "categoryPreferences": prefs,
                          "messageId": message_id, "appliesAt": "the next refresh"},
                         202, request_id)
