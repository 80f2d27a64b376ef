"""The collector as an ASGI app: create_app(settings) builds it; routes can be added by others.

A later module adds endpoints by passing `extra_routes` (or appending to
`app.router.routes`). The collector never opens the DuckDB warehouse: it only writes
landing files (ewh.ingest.landing); the segment API reads the serving copy.
"""

from __future__ import annotations

import contextlib
import gc
import logging
from collections.abc import AsyncIterator, Sequence

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from ewh.collector.admin_routes import admin_routes
from ewh.collector.cors import IntakeCors
from ewh.collector.engagement_routes import engagement_routes
from ewh.collector.intake import Intake
from ewh.collector.keys import KeyRing
from ewh.collector.privacy_routes import privacy_routes
from ewh.collector.rate_limit import KeyRateLimiter
from ewh.collector.settings import CollectorSettings
from ewh.collector.tracking_routes import tracking_routes
from ewh.ingest.landing import LandingWriter
from ewh.promotion.routes import promotion_routes, start_promotion
from ewh.segments.api_routes import segment_api_routes
from ewh.stream.publisher import EventPublisher

log = logging.getLogger("ewh.collector")
HEALTH_BODY = b'{"status":"ok"}'


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
        publisher = None
        if settings.nats_url:
            publisher = EventPublisher(settings.nats_url, settings.stream_publish_queue,
                                       settings.stream_duplicate_window_seconds,
                                       settings.stream_max_age_seconds)
            await publisher.start()
            app.state.intake.publisher = publisher
        app.state.promotion = await start_promotion(settings, app.state.intake)
        # Everything built so far (modules, the app, settings) lives as long as the process:
        # out of the collector's way, so a full collection scans only what requests allocate
        # and does not pause intake for tens of milliseconds (a p99 cost).
        gc.freeze()
        try:
            yield
        finally:
            await app.state.promotion.stop()  # lands queued exposures
            await writer.close()
            if publisher is not None:
                await publisher.stop()

    intake = [*tracking_routes(), *engagement_routes()]
    promotion = promotion_routes()  # app-facing too: browsers may ask with the write key
    routes: list[BaseRoute] = [
        Route("/health", _health, methods=["GET"]),
        *intake,
        *segment_api_routes(),
        *promotion,
        *admin_routes(),
        *privacy_routes(),
        *extra_routes,
    ]
    middleware = [Middleware(IntakeCors, origins=settings.cors_origins,
                             intake_routes=[*intake, *promotion])
                  ] if settings.cors_origins else []
    app = Starlette(routes=routes, middleware=middleware, lifespan=lifespan)
    app.state.settings = settings
    app.state.keys = KeyRing.from_keys(settings.write_keys, settings.read_keys,
                                       settings.admin_keys, settings.consent_keys)
    app.state.rate_limiter = KeyRateLimiter(settings.rate_limit)
    return app


def app_from_env() -> Starlette:
    """The factory `ewh collect` (uvicorn --factory) serves."""
    return create_app(CollectorSettings.from_env())


async def _health(request: Request) -> Response:
    """Liveness for anyone: no paths, keys or settings (GET /v1/admin/status has those)."""
    return Response(HEALTH_BODY, 200, media_type="application/json")
