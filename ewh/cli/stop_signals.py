"""SIGTERM and SIGINT for the long-running commands (`ewh stream consume|broker`,
`ewh webhooks dispatch`): the first asks the loop to stop at its next safe point (after the
micro-batch or the delivery cycle in progress), a second one exits at once.

The handlers are always installed, never left to the default: a process started in the
background by a non-interactive shell ignores SIGINT, Dagster's in-process runs then set
SIGTERM to whatever SIGINT has (dagster._utils.interrupts), and an ignored signal survives
exec, so without them a consumer started from such a process ignored `kill` (issue #17).
signal.signal() replaces an inherited SIG_IGN, and both signals are unblocked in case the mask
was inherited too.
"""

from __future__ import annotations

import os
import signal
import time
from datetime import UTC, datetime
from types import FrameType
from typing import Any

SIGNALS = (signal.SIGTERM, signal.SIGINT)


class StopSignals:
    """`with StopSignals("ewh stream consume") as stop:` then `stop()` is True once a signal
    came; pass it as a loop's should_stop."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.signal: int | None = None
        self._previous: dict[int, Any] = {}

    def __enter__(self) -> StopSignals:
        for signum in SIGNALS:
            self._previous[signum] = signal.signal(signum, self._handle)
        signal.pthread_sigmask(signal.SIG_UNBLOCK, SIGNALS)
        return self

    def __exit__(self, *exc: object) -> None:
        for signum, previous in self._previous.items():
            signal.signal(signum, previous)

    def __call__(self) -> bool:
        return self.signal is not None

    def sleep(self, seconds: float) -> None:
        """Sleep, but return as soon as a stop is asked for."""
        deadline = time.monotonic() + seconds
        while self.signal is None and (left := deadline - time.monotonic()) > 0:
            time.sleep(min(left, 0.1))

    def _handle(self, signum: int, _frame: FrameType | None) -> None:
        # os.write, not print: the handler may interrupt a print on the same stream.
        said = f"{datetime.now(UTC):%H:%M:%S} {self.name}: {signal.Signals(signum).name}"
        if self.signal is not None:
            os.write(2, f"{said} again, exiting now\n".encode())
            os._exit(128 + signum)  # the kernel releases DuckDB's file lock
        self.signal = signum
        os.write(2, f"{said}, stopping after the work in progress "
                    f"(send it again to exit at once)\n".encode())
