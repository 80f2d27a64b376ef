"""Administration endpoints (admin keys only).

- `GET /v1/admin/status`: what `/health` no longer tells anyone: the landing folder, the
  open landing file, files closed, the consent policy and the server limits in force.

The erasure and consent endpoints of the privacy work take the same admin scope.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from ewh.collector.http_io import json_response
from ewh.collector.keys import Scope
from ewh.collector.responder import endpoint
from ewh.collector.server import connection_cap
from ewh.collector.settings import CollectorSettings
from ewh.ingest.landing import LandingWriter


def admin_routes() -> list[Route]:
    return [Route("/v1/admin/status", endpoint(_status, Scope.ADMIN), methods=["GET"])]


async def _status(request: Request, request_id: str) -> Response:
    writer: LandingWriter = request.app.state.writer
    settings: CollectorSettings = request.app.state.settings
    return json_response({
        "landing_dir": str(settings.landing_dir),
        "open_file": writer.open_file.name if writer.open_file else None,
        "files_closed": writer.stats.files_closed,
        "consent_policy": settings.consent_policy,
        "keys": {"write": len(settings.write_keys), "read": len(settings.read_keys),
                 "admin": len(settings.admin_keys)},
        "limits": {
            "rate_limit_per_key": settings.rate_limit or None,
            "header_timeout_seconds": settings.header_timeout_seconds,
            "body_timeout_seconds": settings.body_timeout_seconds,
            "keep_alive_seconds": settings.keep_alive_seconds,
            "max_connections": connection_cap(settings.max_connections),
            "max_message_bytes": settings.max_message_bytes,
            "max_batch_bytes": settings.max_batch_bytes,
        },
        "cors_origins": list(settings.cors_origins),
        # This worker's publisher (ewh.stream.publisher); null when EWH_NATS_URL is unset.
        "event_stream": (request.app.state.intake.publisher.status()
                         if request.app.state.intake.publisher else None),
    }, 200, request_id)
