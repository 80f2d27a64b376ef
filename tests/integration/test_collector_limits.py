"""The collector's server limits, with real sockets against the real `ewh collect`: header,
body and keep-alive timeouts, the header size cap, and hundreds of slow sockets (slowloris)
that must not keep normal clients out."""

from __future__ import annotations

import base64
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from collector_process import WRITE_KEY, Collector, running_collector

AUTH_HEADER = "Authorization: Basic " + base64.b64encode(f"{WRITE_KEY}:".encode()).decode()
FAST = {"EWH_COLLECTOR_HEADER_TIMEOUT_SECONDS": "1", "EWH_COLLECTOR_BODY_TIMEOUT_SECONDS": "1",
        "EWH_COLLECTOR_KEEP_ALIVE_SECONDS": "1"}


@pytest.fixture(scope="module")
def collector(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Collector]:
    with running_collector(tmp_path_factory.mktemp("landing"), **FAST) as running:
        yield running


def _connect(collector: Collector) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", collector.port), timeout=10)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def _closed_after(sock: socket.socket, trickle: bytes = b"") -> tuple[float, bytes]:
    """Seconds until the server closes `sock` (sending `trickle` every 0.2 s meanwhile),
    and what it answered."""
    started, answer = time.monotonic(), b""
    sock.settimeout(0.2)
    while time.monotonic() - started < 10:
        try:
            if trickle:
                sock.sendall(trickle)
            chunk = sock.recv(4096)
        except TimeoutError:
            continue
        except (BrokenPipeError, ConnectionResetError):
            break
        if not chunk:
            break
        answer += chunk
    return time.monotonic() - started, answer


def test_a_socket_that_sends_nothing_is_closed_after_the_header_timeout(
        collector: Collector) -> None:
    with _connect(collector) as sock:
        seconds, answer = _closed_after(sock)
    assert 0.8 < seconds < 3 and answer == b""


def test_headers_trickled_byte_by_byte_are_cut_off_with_408(collector: Collector) -> None:
    with _connect(collector) as sock:
        sock.sendall(b"POST /v1/track HTTP/1.1\r\nHost: x\r\n")
        seconds, answer = _closed_after(sock, trickle=b"X")  # one header byte at a time
    assert seconds < 3
    assert answer.startswith(b"HTTP/1.1 408")


def test_a_body_that_never_completes_is_cut_off_and_nothing_is_landed(
        collector: Collector) -> None:
    message_id = f"m-{uuid.uuid4()}"
    body = (f'{{"messageId": "{message_id}", "userId": "u", "event": "e", '
            '"timestamp": "2026-10-01T12:00:00Z"}').encode()
    with _connect(collector) as sock:
        sock.sendall(f"POST /v1/track HTTP/1.1\r\nHost: x\r\n{AUTH_HEADER}\r\n"
                     f"Content-Length: {len(body)}\r\n\r\n".encode() + body[:-5])
        seconds, _ = _closed_after(sock)
    assert seconds < 3
    landed = b"".join(p.read_bytes() for p in collector.landing.glob("*.ndjson*"))
    assert message_id.encode() not in landed


def test_an_idle_keep_alive_connection_is_closed_after_the_keep_alive_timeout(
        collector: Collector) -> None:
    with _connect(collector) as sock:
        sock.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
        time.sleep(0.3)
        assert sock.recv(4096).startswith(b"HTTP/1.1 200")
        seconds, _ = _closed_after(sock)
    assert 0.5 < seconds < 3


def test_oversized_headers_are_refused_with_431(collector: Collector) -> None:
    with _connect(collector) as sock:
        sock.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n")
        try:
            for _ in range(100):  # 100 KB of headers, over the 64 KB cap
                sock.sendall(b"X-Filler: " + b"y" * 1000 + b"\r\n")
        except (BrokenPipeError, ConnectionResetError):
            pass
        _, answer = _closed_after(sock)
    assert answer.startswith(b"HTTP/1.1 431")


class Slowloris:
    """`count` sockets that send a request line and then one header line a second, and
    reconnect whenever the server closes them."""

    def __init__(self, port: int, count: int) -> None:
        self.port, self.count = port, count
        self.sockets: list[socket.socket] = []
        self.reconnects = 0
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _open(self) -> socket.socket | None:
        try:
            sock = socket.create_connection(("127.0.0.1", self.port), timeout=2)
            sock.sendall(b"POST /v1/batch HTTP/1.1\r\nHost: x\r\n")
            return sock
        except OSError:
            return None

    def start(self) -> None:
        self.sockets = [s for s in (self._open() for _ in range(self.count)) if s]
        self.thread.start()

    def _run(self) -> None:
        while not self.stop.wait(0.5):
            for i, sock in enumerate(self.sockets):
                try:
                    sock.sendall(b"X-Slow: 1\r\n")
                except OSError:
                    sock.close()
                    fresh = self._open()
                    if fresh is not None:
                        self.sockets[i] = fresh
                        self.reconnects += 1

    def close(self) -> None:
        self.stop.set()
        self.thread.join(10)
        for sock in self.sockets:
            sock.close()


def test_hundreds_of_slow_sockets_do_not_keep_normal_clients_out(tmp_path: Path) -> None:
    # 256 file descriptors, as in the finding; 300 slow sockets would take them all.
    with running_collector(tmp_path / "landing", fd_limit=256) as collector:
        attack = Slowloris(collector.port, 300)
        attack.start()
        try:
            assert len(attack.sockets) == 300
            time.sleep(1)
            served, started = [], time.monotonic()
            for i in range(12):  # a fresh connection each, as a one-off client makes
                message = {"messageId": f"m-{uuid.uuid4()}", "userId": f"u-{i}",
                           "event": "Signed Up", "timestamp": "2026-10-01T12:00:00Z"}
                try:
                    answer = requests.post(f"{collector.url}/v1/track", json=message,
                                           auth=(WRITE_KEY, ""), timeout=5,
                                           headers={"Connection": "close"})
                    served.append(answer.status_code)
                except requests.RequestException as exc:
                    served.append(type(exc).__name__)
            elapsed = time.monotonic() - started
        finally:
            attack.close()
    assert served == [200] * 12
    assert elapsed < 10  # served at once, not after the slow sockets' header timeout
    assert attack.reconnects > 0  # the server made room by closing slow sockets


def test_a_connection_answered_before_its_body_ended_still_times_out_when_idle(
        collector: Collector) -> None:
    with _connect(collector) as sock:
        body = b"x" * 600_000  # over the 500 KB batch limit: 413 from the headers alone
        sock.sendall(f"POST /v1/batch HTTP/1.1\r\nHost: x\r\n{AUTH_HEADER}\r\n"
                     f"Content-Length: {len(body)}\r\n\r\n".encode())
        sock.settimeout(5)
        assert sock.recv(4096).startswith(b"HTTP/1.1 413")
        sock.sendall(body)  # the rest arrives; the server reads and drops it
        seconds, _ = _closed_after(sock)
    assert seconds < 3
