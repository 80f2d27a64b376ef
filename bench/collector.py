"""Collector throughput and latency: batches of 100 over loopback from concurrent clients.

`python -m bench.collector [--seconds S] [--clients N] [--workers W]` starts `ewh collect` on a
free 127.0.0.1 port, keeps N keep-alive connections busy posting /v1/batch (100 events each,
unique messageIds) for S seconds, then stops the collector and checks that every
acknowledged event is in the landing files. Prints a table and the ratio to the target
(20,000 events/s) and writes bench/results/collector.json.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import re
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"
TARGET_EVENTS_PER_S = 20_000
BATCH = 100
WRITE_KEY = "bench-key"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _template(port: int) -> bytes:
    """One batch request; `RRRRRRRRRRRR` in each messageId is replaced per request, so every
    event is unique while the client spends almost no CPU building requests."""
    now = time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime())
    run = uuid.uuid4().hex[:8]
    batch = [{"type": "track", "messageId": f"{run}-RRRRRRRRRRRR-{i:03d}",
              "anonymousId": f"anon-{i % 7}",
              "userId": f"user-{i % 13}", "event": "Product Viewed", "timestamp": now,
              "properties": {"product_id": f"sku-{i}", "category": "books", "price": 12.5},
              "context": {"library": {"name": "bench", "version": "1"},
                          "consent": {"categoryPreferences": {"analytics": True}}}}
             for i in range(BATCH)]
    body = json.dumps({"batch": batch, "sentAt": now}).encode()
    auth = base64.b64encode(f"{WRITE_KEY}:".encode()).decode()
    head = (f"POST /v1/batch HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
            f"Authorization: Basic {auth}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n\r\n")
    return head.encode() + body


async def _client(port: int, until: float, latencies: list[float], counts: list[int],
                  template: bytes, sequence: list[int]) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        while time.perf_counter() < until:
            sequence[0] += 1
            request = template.replace(b"RRRRRRRRRRRR", b"%012d" % sequence[0])
            started = time.perf_counter()
            writer.write(request)
            head = await reader.readuntil(b"\r\n\r\n")
            length = next(int(line.split(b":")[1]) for line in head.split(b"\r\n")
                          if line.lower().startswith(b"content-length"))
            await reader.readexactly(length)
            latencies.append(time.perf_counter() - started)
            if head.startswith(b"HTTP/1.1 200"):
                counts[0] += BATCH
            else:
                counts[1] += 1
    finally:
        writer.close()


async def _load(port: int, seconds: float, clients: int) -> tuple[list[float], list[int]]:
    latencies: list[float] = []
    counts = [0, 0]  # acknowledged events, failed requests
    template, sequence = _template(port), [0]
    until = time.perf_counter() + seconds
    await asyncio.gather(*(_client(port, until, latencies, counts, template, sequence)
                           for _ in range(clients)))
    return latencies, counts


def wait_healthy(port: int, process: subprocess.Popen[bytes], seconds: float = 20) -> None:
    """Until the collector on `port` answers /health (it exited or took too long: raise)."""
    import urllib.request

    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError("the collector exited at start")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=1):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError("the collector did not start")


def run(seconds: float, clients: int, workers: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory(prefix="ewh-bench-collector-") as tmp:
        landing = Path(tmp) / "landing"
        port = _free_port()
        env = {**os.environ, "EWH_WRITE_KEYS": WRITE_KEY}
        ewh = str(Path(sys.executable).with_name("ewh"))
        process = subprocess.Popen([ewh, "collect", "--port", str(port), "--landing-dir",
                                    str(landing), "--workers", str(workers)], env=env,
                                   stdout=subprocess.DEVNULL)
        try:
            wait_healthy(port, process)
            started = time.perf_counter()
            latencies, (acked, failed) = asyncio.run(_load(port, seconds, clients))
            elapsed = time.perf_counter() - started
        finally:
            process.send_signal(signal.SIGTERM)
            process.wait(timeout=30)
        ids = {m for p in landing.glob("*.ndjson")
               for m in re.findall(rb'"messageId":"([^"]+)"', p.read_bytes())}
        landed = len(ids)
    ms = sorted(x * 1000 for x in latencies)
    return {
        "seconds": round(elapsed, 2), "clients": clients, "workers": workers,
        "batch_size": BATCH, "requests": len(ms), "failed_requests": failed,
        "events_acknowledged": acked, "events_landed": landed,
        "events_per_s": round(acked / elapsed),
        "p50_ms": round(statistics.median(ms), 2),
        "p99_ms": round(ms[min(len(ms) - 1, int(len(ms) * 0.99))], 2),
        "target_events_per_s": TARGET_EVENTS_PER_S,
        "ratio": round(acked / elapsed / TARGET_EVENTS_PER_S, 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--workers", type=int, default=1)
    args = parser.parse_args()
    r = run(args.seconds, args.clients, args.workers)
    print(f"collector bench: {r['clients']} clients, batches of {r['batch_size']}, "
          f"{r['seconds']} s, {r['workers']} worker(s), loopback")
    print(f"{'events/s':>10}{'p50 ms':>10}{'p99 ms':>10}{'requests':>10}{'failed':>8}")
    print(f"{r['events_per_s']:>10,}{r['p50_ms']:>10}{r['p99_ms']:>10}{r['requests']:>10,}"
          f"{r['failed_requests']:>8}")
    print(f"acknowledged {r['events_acknowledged']:,} events, landed {r['events_landed']:,}")
    verdict = "meets" if r["ratio"] >= 1 else "misses"
    print(f"ratio to the {TARGET_EVENTS_PER_S:,} events/s target: {r['ratio']:.2f}x ({verdict})")
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "collector.json").write_text(json.dumps(r, indent=2) + "\n")


if __name__ == "__main__":
    main()
