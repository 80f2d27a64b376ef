"""Run the real collector (`ewh collect`) in a subprocess on a free loopback port."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import requests

EWH = str(Path(sys.executable).with_name("ewh"))
WRITE_KEY = "test-write-key"


@dataclass
class Collector:
    url: str
    landing: Path
    process: subprocess.Popen[bytes]

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


def start_collector(landing: Path, **env: str) -> Collector:
    port = free_port()
    environment = {**os.environ, "EWH_WRITE_KEYS": f"{WRITE_KEY},second-key", **env}
    process = subprocess.Popen([EWH, "collect", "--host", "127.0.0.1", "--port", str(port),
                                "--landing-dir", str(landing)], env=environment,
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"collector exited: {process.stderr.read().decode()[-2000:]}")
        try:
            if requests.get(f"{url}/health", timeout=1).status_code == 200:
                return Collector(url, landing, process)
        except requests.ConnectionError:
            time.sleep(0.05)
    process.kill()
    raise RuntimeError("collector did not answer /health within 20 s")


@contextmanager
def running_collector(landing: Path, **env: str) -> Iterator[Collector]:
    collector = start_collector(landing, **env)
    try:
        yield collector
    finally:
        if collector.process.poll() is None:
            collector.stop()
