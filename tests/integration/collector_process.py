"""Run the real collector (`ewh collect`) in a subprocess on a free loopback port."""

from __future__ import annotations

import os
import resource
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import requests

EWH = str(Path(sys.executable).with_name("ewh"))
WRITE_KEY = "test-write-key"  # intake only
READ_KEY = "test-read-key"  # the segment API and the export files
ADMIN_KEY = "test-admin-key"  # administration (and reads)


@dataclass
class Collector:
    url: str
    landing: Path
    process: subprocess.Popen[bytes]
    log: Path  # what the collector wrote to stdout and stderr

    @property
    def port(self) -> int:
        return int(self.url.rsplit(":", 1)[1])

    def kill9(self) -> None:
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            self.process.wait(timeout=20)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _fd_limit(limit: int) -> Callable[[], None]:
    def apply() -> None:  # in the child, before exec
        resource.setrlimit(resource.RLIMIT_NOFILE, (limit, limit))
    return apply


def start_collector(landing: Path, fd_limit: int | None = None, **env: str) -> Collector:
    """`ewh collect` on a free port with a write, a read and an admin key (env overrides);
    `fd_limit` caps the process's file descriptors (soft and hard)."""
    port = free_port()
    environment = {**os.environ, "EWH_WRITE_KEYS": f"{WRITE_KEY},second-key",
                   "EWH_READ_KEYS": READ_KEY, "EWH_ADMIN_KEYS": ADMIN_KEY, **env}
    handle, name = tempfile.mkstemp(prefix="ewh-collector-", suffix=".log")
    log = Path(name)
    process = subprocess.Popen([EWH, "collect", "--host", "127.0.0.1", "--port", str(port),
                                "--landing-dir", str(landing)], env=environment,
                               stdout=handle, stderr=subprocess.STDOUT,
                               preexec_fn=_fd_limit(fd_limit) if fd_limit else None)
    os.close(handle)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"collector exited: {log.read_text()[-2000:]}")
        try:
            if requests.get(f"{url}/health", timeout=1).status_code == 200:
                return Collector(url, landing, process, log)
        except requests.ConnectionError:
            time.sleep(0.05)
    process.kill()
    raise RuntimeError("collector did not answer /health within 20 s")


@contextmanager
def running_collector(landing: Path, fd_limit: int | None = None,
                      **env: str) -> Iterator[Collector]:
    collector = start_collector(landing, fd_limit, **env)
    try:
        yield collector
    finally:
        if collector.process.poll() is None:
            collector.stop()
        collector.log.unlink(missing_ok=True)
