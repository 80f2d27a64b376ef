"""CORS for the app-facing endpoints only, for the browser origins in EWH_CORS_ORIGINS.

Browsers send events from a page's origin to the collector's (analytics.js sends its key in
an Authorization header, so every call is preflighted) and ask the promotion API (GET) with
the same write key. The read and admin endpoints get no CORS headers: their keys never
belong in a browser. Starlette's CORSMiddleware does the
protocol; this wrapper only decides which paths it covers.
"""

from __future__ import annotations

from collections.abc import Sequence

from starlette.middleware.cors import CORSMiddleware
from starlette.routing import BaseRoute, Match
from starlette.types import ASGIApp, Receive, Scope, Send

ALLOW_HEADERS = ("Authorization", "Content-Type", "Content-Encoding", "X-Retry-Count")
EXPOSE_HEADERS = ("Retry-After", "X-Request-Id")  # analytics.js reads Retry-After on a 429


class IntakeCors:
    def __init__(self, app: ASGIApp, origins: Sequence[str],
                 intake_routes: Sequence[BaseRoute]) -> None:
        self.app = app
        self.routes = tuple(intake_routes)
        self.cors = CORSMiddleware(app, allow_origins=tuple(origins),
                                   allow_methods=("GET", "POST", "PUT"),
                                   allow_headers=ALLOW_HEADERS,
                                   expose_headers=EXPOSE_HEADERS, max_age=3600)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and self._is_intake(scope):
            await self.cors(scope, receive, send)
        else:
            await self.app(scope, receive, send)

    def _is_intake(self, scope: Scope) -> bool:
        # A preflight (OPTIONS) matches an intake path partially: the path, not the method.
        return any(route.matches(scope)[0] is not Match.NONE for route in self.routes)
