"""ewh.cli.stop_signals with real signals: to this process, and to a child for the exit at once."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

from ewh.cli.stop_signals import StopSignals


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_asks_to_stop_even_when_it_was_ignored_and_the_handlers_go_back(
        signum: int) -> None:
    before = signal.getsignal(signum)
    signal.signal(signum, signal.SIG_IGN)  # as a child inherits it from a background run
    try:
        with StopSignals("test") as stop:
            assert not stop()
            os.kill(os.getpid(), signum)
            started = time.monotonic()
            stop.sleep(5)  # returns as soon as the stop is asked for
            assert time.monotonic() - started < 1
            assert stop() and stop.signal == signum
        assert signal.getsignal(signum) == signal.SIG_IGN
    finally:
        signal.signal(signum, before)


def test_a_second_signal_exits_at_once_with_128_plus_the_signal() -> None:
    code = ("import os, signal, time\n"
            "from ewh.cli.stop_signals import StopSignals\n"
            "with StopSignals('child') as stop:\n"
            "    os.kill(os.getpid(), signal.SIGTERM)\n"
            "    stop.sleep(5)\n"
            "    print('first', stop(), flush=True)\n"
            "    os.kill(os.getpid(), signal.SIGTERM)\n"
            "    time.sleep(5)\n"
            "print('not reached')\n")
    started = time.monotonic()
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=30)
    assert done.returncode == 128 + signal.SIGTERM, done.stderr
    assert done.stdout == "first True\n"
    assert "SIGTERM again, exiting now" in done.stderr
    assert time.monotonic() - started < 5
