"""The collector as an ASGI app: create_app(settings) builds it; routes can be added by others.

A later module adds read endpoints by passing `extra_routes` (or appending to
`app.router.routes`). The collector never opens the DuckDB warehouse: it only writes
landing files (ewh.ingest.landing).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator, Sequence

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import BaseRoute, Route

from ewh.collector.engagement_routes import engagement_routes
from ewh.collector.intake import Intake
from ewh.collector.settings import CollectorSettings
from ewh.collector.tracking_routes import tracking_routes
from ewh.ingest.landing import LandingWriter
from ewh.segments.api_routes import segment_api_routes

log = logging.getLogger("ewh.collector")


def create_app(settings: CollectorSettings, extra_routes: Sequence[BaseRoute] = ()) -> Starlette:
    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        writer = LandingWriter(settings.landing_dir, settings.max_file_bytes,
                               settings.max_file_age_seconds)
        for item in await writer.start():
            log.warning("recovered %s (dropped a torn tail of %d bytes)", item.path,
                        item.dropped_bytes)
        app.state.writer = writer
        app.state.intake = Intake(settings, writer)
        try:
            yield
        finally:
            await writer.close()

    routes: list[BaseRoute] = [
        Route("/health", _health, methods=["GET"]),
        *tracking_routes(),
        *engagement_routes(),
        *segment_api_routes(),
        *extra_routes,
    ]
    app = Starlette(routes=routes, lifespan=lifespan)
    app.state.settings = settings
    return app


def app_from_env() -> Starlette:
    """The factory `ewh collect` (uvicorn --factory) serves."""
    return create_app(CollectorSettings.from_env())


async def _health(request: Request) -> JSONResponse:
    writer: LandingWriter = request.app.state.writer
    settings: CollectorSettings = request.app.state.settings
    return JSONResponse({
        "status": "ok",
        "landing_dir": str(settings.landing_dir),
        "open_file": writer.open_file.name if writer.open_file else None,
        "files_closed": writer.stats.files_closed,
        "consent_policy": settings.consent_policy,
    })
