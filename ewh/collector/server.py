"""How `ewh collect` serves the app: uvicorn (httptools) with connection guards.

uvicorn bounds neither how long a client may take to send its headers or body nor how many
connections stay open, so a few hundred slow sockets (slowloris) could take every file
descriptor and starve real clients. `GuardedHttpToolsProtocol` adds, per connection:

- a header timeout: the headers of a request must arrive within
  EWH_COLLECTOR_HEADER_TIMEOUT_SECONDS of its first byte (of the connection, when new);
- a header size cap (MAX_HEADER_BYTES, answered 431);
- a body timeout: the body must arrive within EWH_COLLECTOR_BODY_TIMEOUT_SECONDS of the
  headers;
- a connection cap: at most EWH_COLLECTOR_MAX_CONNECTIONS open connections per process, and
  always fewer than the process's file-descriptor limit allows. At the cap a new connection
  closes the oldest connection that is waiting for a request (idle keep-alive, or still
  sending its headers), so slow sockets give way to clients that send requests; only when
  every connection is busy with a request is the new one answered 503.

The keep-alive timeout is uvicorn's own (EWH_COLLECTOR_KEEP_ALIVE_SECONDS).
"""

from __future__ import annotations

import asyncio
import os
import resource
from dataclasses import dataclass, field

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from ewh.collector.settings import CollectorSettings
from ewh.common.settings import Settings

MAX_HEADER_BYTES = 64 * 1024  # request line and headers; Segment's SDKs send well under 2 KB
FD_RESERVE = 64  # descriptors kept for the landing files, DuckDB reads, the loop and stdio
PROTOCOL = "ewh.collector.server:GuardedHttpToolsProtocol"  # what uvicorn's `http` option takes

_TIMEOUT_408 = (b"HTTP/1.1 408 Request Timeout\r\ncontent-type: text/plain\r\n"
                b"content-length: 16\r\nconnection: close\r\n\r\nrequest timeout\n")
_TOO_LARGE_431 = (b"HTTP/1.1 431 Request Header Fields Too Large\r\ncontent-type: text/plain\r\n"
                  b"content-length: 25\r\nconnection: close\r\n\r\nrequest headers too large")
_BUSY_503 = (b"HTTP/1.1 503 Service Unavailable\r\ncontent-type: text/plain\r\n"
             b"retry-after: 1\r\ncontent-length: 23\r\nconnection: close\r\n\r\n"
             b"too many connections\r\n\r\n")


def connection_cap(configured: int) -> int:
    """The configured cap, lowered to leave FD_RESERVE descriptors free."""
    soft, _hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY:
        return configured
    return max(1, min(configured, soft - FD_RESERVE))


@dataclass
class ConnectionGuard:
    """Per process: the limits, and the connections that may be closed to make room."""

    header_timeout: float
    body_timeout: float
    max_connections: int
    # Connections waiting for a request, oldest first (dicts keep insertion order).
    waiting: dict[GuardedHttpToolsProtocol, None] = field(default_factory=dict)

    @classmethod
    def from_settings(cls, settings: CollectorSettings) -> ConnectionGuard:
        return cls(settings.header_timeout_seconds, settings.body_timeout_seconds,
                   connection_cap(settings.max_connections))

    def make_room(self, newcomer: GuardedHttpToolsProtocol, open_connections: int) -> bool:
        """Close waiting connections until `newcomer` fits; False when none can go."""
        while open_connections > self.max_connections:
            victim = next((c for c in self.waiting if c is not newcomer), None)
            if victim is None:
                return False
            victim.close_waiting()
            open_connections -= 1
        return True


_guard: ConnectionGuard | None = None


def _process_guard() -> ConnectionGuard:
    # Built on first use in each worker process, from the settings that process was given.
    global _guard
    if _guard is None:
        _guard = ConnectionGuard.from_settings(CollectorSettings.from_env())
    return _guard


class GuardedHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with header/body timeouts and the connection cap."""

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._guard = _process_guard()
        self._timer: asyncio.TimerHandle | None = None
        self._idle = False  # the timer is the idle timeout of on_message_complete
        self._awaiting_headers = True
        self._header_bytes = 0
        self._guard.waiting[self] = None
        if not self._guard.make_room(self, len(self.connections)):
            self._close_with(_BUSY_503)
            return
        self._arm(self._guard.header_timeout, self._header_timed_out)

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        self._guard.waiting.pop(self, None)
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._idle:  # the next request begins: the header timeout takes over
            self._disarm()
        awaiting = self._awaiting_headers
        super().data_received(data)
        if awaiting and self._awaiting_headers and not self.transport.is_closing():
            # The whole chunk went to a request line and headers that are still incomplete.
            self._header_bytes += len(data)
            if self._header_bytes > MAX_HEADER_BYTES:
                self._close_with(_TOO_LARGE_431)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        if self._timer is None:  # a keep-alive connection starts its next request
            self._arm(self._guard.header_timeout, self._header_timed_out)

    def on_headers_complete(self) -> None:
        self._awaiting_headers = False
        self._header_bytes = 0
        self._guard.waiting.pop(self, None)
        self._arm(self._guard.body_timeout, self._body_timed_out)
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        self._disarm()
        self._awaiting_headers = True
        super().on_message_complete()
        if (self.cycle is not None and self.cycle.response_complete and not self.pipeline
                and not self.transport.is_closing()):
            # Answered before its body ended (a 413, say): idle from now on, and the body's
            # bytes cancelled uvicorn's keep-alive timer, so arm one here.
            self._guard.waiting[self] = None
            self._arm(self.timeout_keep_alive, self._idle_timed_out)
            self._idle = True

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if not self.transport.is_closing() and self._awaiting_headers and not self.pipeline:
            self._guard.waiting[self] = None  # idle keep-alive: may give way to a newcomer

    def close_waiting(self) -> None:
        """Give way to a newcomer at the connection cap."""
        self._guard.waiting.pop(self, None)
        self.connections.discard(self)  # counted out now; connection_lost follows
        self._disarm()
        self.transport.close()

    def _header_timed_out(self) -> None:
        self._timer = None
        if self._awaiting_headers and not self.transport.is_closing():
            # A request that has begun is told why; a socket that sent nothing just closes.
            self._close_with(_TIMEOUT_408 if self.scope is not None else b"")

    def _idle_timed_out(self) -> None:
        self._timer, self._idle = None, False
        if self._awaiting_headers and not self.transport.is_closing():
            self._close_with(b"")

    def _body_timed_out(self) -> None:
        # The app is waiting for the rest of the body: closing tells it the client is gone.
        self._timer = None
        if not self.transport.is_closing():
            self.transport.close()

    def _close_with(self, answer: bytes) -> None:
        self._disarm()
        self._guard.waiting.pop(self, None)
        if answer:
            self.transport.write(answer)
        self.transport.close()

    def _arm(self, seconds: float, callback: object) -> None:
        self._disarm()
        self._timer = self.loop.call_later(seconds, callback)  # type: ignore[arg-type]

    def _disarm(self) -> None:
        self._idle = False
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None


def serve(settings: Settings, host: str, port: int, workers: int) -> None:
    """Serve the collector app from `settings` until stopped (SIGINT/SIGTERM)."""
    import uvicorn

    # uvicorn workers are processes that build their app from the environment: hand them
    # these settings (command-line overrides included) the one way they can read them.
    os.environ.update(settings.as_env())
    uvicorn.run("ewh.collector.app:app_from_env", factory=True, host=host, port=port,
                workers=workers, loop="uvloop", http=PROTOCOL, access_log=False,
                log_level="warning", timeout_graceful_shutdown=10,
                timeout_keep_alive=settings.collector_keep_alive_seconds)  # type: ignore[arg-type]
