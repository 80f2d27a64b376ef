"""Collector throughput and latency: batches of 100 over loopback from concurrent clients.

`python -m bench.collector [--seconds S] [--clients N] [--workers W] [--repeat R]
[--baseline DIR]` starts `ewh collect` on a free 127.0.0.1 port, keeps N keep-alive
connections busy posting /v1/batch (100 events each, unique messageIds) for S seconds, then
stops the collector and checks that every acknowledged event is in the landing files. It does
that R times and reports the median run against the targets (50,000 events/s with p99 under
50 ms), with the CPU the collector and the client used and the load average, and writes
bench/results/collector.json.

`--baseline DIR` also runs the collector from another checkout (its code on PYTHONPATH,
this client), alternating with this one run by run, so a before/after ratio comes from one
window of a shared machine.
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
TARGET_EVENTS_PER_S = 50_000
TARGET_P99_MS = 50.0
BATCH = 100
WRITE_KEY = "bench-key"
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _template(port: int, run: str) -> bytes:
    """One batch request; `RRRRRRRRRRRR` in each messageId is replaced per request (by its
    sequence number), so every event is unique while the client spends almost no CPU building
    requests. The messageIds are `<run>-<sequence>-<index in the batch>`."""
    now = time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime())
    batch = [{"type": "track", "messageId": f"{run}-RRRRRRRRRRRR-{i:03d}",
              "anonymousId": f"anon-{i % 7}",
              "userId": f"user-{i % 13}", "event": "Product Viewed",
              # Each event its own time, as an SDK's queue sends them.
              "timestamp": now[:-4] + f"{i:03d}Z",
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


class _Client(asyncio.Protocol):
    """One keep-alive connection with one request in flight, as an SDK's flush loop.

    A bare protocol rather than asyncio streams: the client shares the machine's two cores
    with the collector it measures, so it does as little per request as it can."""

    def __init__(self, load: _Load) -> None:
        self.load = load
        self.buffer = b""
        self.started = 0.0
        self.sequence = 0
        self.transport: asyncio.Transport | None = None
        self.done = asyncio.get_running_loop().create_future()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self._send()

    def _send(self) -> None:
        load = self.load
        if time.perf_counter() >= load.until:
            self.transport.close()  # type: ignore[union-attr]
            return
        load.sequence += 1
        self.sequence = load.sequence
        self.started = time.perf_counter()
        self.transport.write(  # type: ignore[union-attr]
            load.template.replace(b"RRRRRRRRRRRR", b"%012d" % load.sequence))

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        end = self.buffer.find(b"\r\n\r\n")
        if end < 0:
            return
        head = self.buffer[:end]
        length = int(_CONTENT_LENGTH.search(head)[1])  # type: ignore[index]
        if len(self.buffer) < end + 4 + length:
            return
        self.buffer = self.buffer[end + 4 + length:]
        load = self.load
        load.latencies.append(time.perf_counter() - self.started)
        if head.startswith(b"HTTP/1.1 200"):
            load.acknowledged.append(self.sequence)
        else:
            load.failed += 1
        self._send()

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.done.done():
            self.done.set_result(None)


_CONTENT_LENGTH = re.compile(rb"(?i)content-length:\s*(\d+)")


class _Load:
    def __init__(self, port: int, until: float) -> None:
        self.run = uuid.uuid4().hex[:8]
        self.template, self.until = _template(port, self.run), until
        self.sequence = 0
        self.latencies: list[float] = []
        self.acknowledged: list[int] = []  # the sequence numbers of the requests answered 200
        self.failed = 0


async def _run_load(port: int, seconds: float, clients: int) -> _Load:
    loop = asyncio.get_running_loop()
    load = _Load(port, time.perf_counter() + seconds)
    protocols = []
    for _ in range(clients):
        _, protocol = await loop.create_connection(lambda: _Client(load), "127.0.0.1", port)
        protocols.append(protocol)
    await asyncio.gather(*(p.done for p in protocols))
    return load


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


def _tree_cpu_seconds(root: int) -> float:
    """User + system CPU of a process and its living descendants (uvicorn's workers)."""
    parents: dict[int, int] = {}
    times: dict[int, float] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        pid = int(entry.name)
        parents[pid] = int(fields[1])
        times[pid] = (int(fields[11]) + int(fields[12])) / CLOCK_TICKS
    total, todo = 0.0, [root]
    while todo:
        pid = todo.pop()
        total += times.get(pid, 0.0)
        todo += [child for child, parent in parents.items() if parent == pid]
    return total


def run(seconds: float, clients: int, workers: int, code: Path | None = None) -> dict:
    """One run; `code`: a checkout whose collector to start (default: the one importing this)."""
    with tempfile.TemporaryDirectory(prefix="ewh-bench-collector-") as tmp:
        landing = Path(tmp) / "landing"
        port = _free_port()
        env = {**os.environ, "EWH_WRITE_KEYS": WRITE_KEY}
        if code is not None:
            env["PYTHONPATH"] = str(code)
        ewh = str(Path(sys.executable).with_name("ewh"))
        process = subprocess.Popen([ewh, "collect", "--port", str(port), "--landing-dir",
                                    str(landing), "--workers", str(workers)], env=env,
                                   stdout=subprocess.DEVNULL)
        try:
            wait_healthy(port, process)
            load_before = os.getloadavg()[0]
            server_cpu = _tree_cpu_seconds(process.pid)
            client_cpu = time.process_time()
            started = time.perf_counter()
            load = asyncio.run(_run_load(port, seconds, clients))
            elapsed = time.perf_counter() - started
            client_cpu = time.process_time() - client_cpu
            server_cpu = _tree_cpu_seconds(process.pid) - server_cpu
            load_after = os.getloadavg()[0]
        finally:
            process.send_signal(signal.SIGTERM)
            process.wait(timeout=30)
        ids = {m for p in landing.glob("*.ndjson")
               for m in re.findall(rb'"messageId":"([^"]+)"', p.read_bytes())}
    landed = len(ids)
    # Every event of every acknowledged request, by its own messageId.
    missing = sum(f"{load.run}-{seq:012d}-{i:03d}".encode() not in ids
                  for seq in load.acknowledged for i in range(BATCH))
    ms = sorted(x * 1000 for x in load.latencies)
    acked = len(load.acknowledged) * BATCH
    return {
        "code": str(code) if code is not None else "this checkout",
        "seconds": round(elapsed, 2), "clients": clients, "workers": workers,
        "batch_size": BATCH, "requests": len(ms), "failed_requests": load.failed,
        "events_acknowledged": acked, "events_landed": landed,
        "acknowledged_not_landed": missing,
        "events_per_s": round(acked / elapsed),
        "p50_ms": round(statistics.median(ms), 2),
        "p99_ms": round(ms[min(len(ms) - 1, int(len(ms) * 0.99))], 2),
        "max_ms": round(ms[-1], 2),
        "collector_cpu_s": round(server_cpu, 2),
        "collector_cpu_us_per_event": round(server_cpu / max(acked, 1) * 1e6, 1),
        "client_cpu_s": round(client_cpu, 2),
        "load_average_before": round(load_before, 2), "load_average_after": round(load_after, 2),
    }


def _median_run(runs: list[dict]) -> dict:
    return sorted(runs, key=lambda r: r["events_per_s"])[(len(runs) - 1) // 2]


def _row(r: dict) -> str:
    return (f"{r['events_per_s']:>10,}{r['p50_ms']:>9}{r['p99_ms']:>9}{r['requests']:>9,}"
            f"{r['failed_requests']:>7}{r['collector_cpu_us_per_event']:>10}"
            f"{r['client_cpu_s']:>8}{r['load_average_before']:>7}  {r['code']}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--repeat", type=int, default=3, help="runs (the median is reported)")
    parser.add_argument("--baseline", type=Path, default=None,
                        help="a checkout whose collector runs alternately, for a ratio")
    parser.add_argument("--out", type=Path, default=RESULTS / "collector.json")
    args = parser.parse_args()
    print(f"collector bench: {args.clients} clients, batches of {BATCH}, {args.seconds} s, "
          f"{args.workers} worker(s), loopback, {args.repeat} run(s)")
    print(f"{'events/s':>10}{'p50 ms':>9}{'p99 ms':>9}{'requests':>9}{'failed':>7}"
          f"{'CPU us/ev':>10}{'client':>8}{'load':>7}")
    runs: list[dict] = []
    baseline: list[dict] = []
    for _ in range(args.repeat):
        if args.baseline is not None:
            baseline.append(run(args.seconds, args.clients, args.workers, args.baseline))
            print(_row(baseline[-1]), flush=True)
        runs.append(run(args.seconds, args.clients, args.workers))
        print(_row(runs[-1]), flush=True)
    r = _median_run(runs)
    lost = [x for x in runs + baseline if x["acknowledged_not_landed"]]
    meets = r["events_per_s"] >= TARGET_EVENTS_PER_S and r["p99_ms"] < TARGET_P99_MS
    summary = {
        **r, "runs": runs,
        "target_events_per_s": TARGET_EVENTS_PER_S, "target_p99_ms": TARGET_P99_MS,
        "ratio": round(r["events_per_s"] / TARGET_EVENTS_PER_S, 2),
        "meets_target": meets and not lost,
    }
    print(f"median run: {r['events_per_s']:,} events/s, p99 {r['p99_ms']} ms; acknowledged "
          f"{r['events_acknowledged']:,} events, landed {r['events_landed']:,}")
    if baseline:
        b = _median_run(baseline)
        summary["baseline"] = {**b, "runs": baseline}
        summary["vs_baseline"] = {
            "events_per_s": round(r["events_per_s"] / b["events_per_s"], 2),
            "p99_ms": round(r["p99_ms"] / b["p99_ms"], 2),
            "cpu_per_event": round(r["collector_cpu_us_per_event"]
                                   / b["collector_cpu_us_per_event"], 2)}
        v = summary["vs_baseline"]
        print(f"vs baseline ({args.baseline}): {v['events_per_s']}x events/s, "
              f"{v['p99_ms']}x p99, {v['cpu_per_event']}x collector CPU per event")
    for x in lost:
        print(f"LOST EVENTS: {x['code']}: {x['acknowledged_not_landed']:,} of "
              f"{x['events_acknowledged']:,} acknowledged events are not in the landing files")
    print(f"target {TARGET_EVENTS_PER_S:,} events/s with p99 < {TARGET_P99_MS:g} ms: "
          f"{summary['ratio']:.2f}x, p99 {r['p99_ms']} ms ({'meets' if meets else 'misses'})")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(summary, indent=2) + "\n")
    if lost:
        sys.exit(1)


if __name__ == "__main__":
    main()
