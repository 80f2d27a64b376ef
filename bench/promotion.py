"""Promotion API latency on loopback at a fixed request rate, with publishes under load.

`python -m bench.promotion [--rate 1000] [--seconds 20] [--users 50000] [--publishes 2]`
builds a serving copy of `--users` users (dim_users, segment memberships, five
recommendations each, send times; synthetic values, the real tables and the real publish),
starts `ewh collect` on a free 127.0.0.1 port with three experiments (one targeted at a
segment), and sends GET /api/promotion at `--rate` requests/s, open loop (each request has a
scheduled send time; latency runs from that time, so a stall counts for every request it
delays), over keep-alive connections with the app's write key. Users are drawn at random
from the known users plus 10 % anonymous visitors, so some answers land a new exposure
(fsync'ed by the landing writer's group commit) and repeats do not. During the run the
serving copy is republished `--publishes` times; every answer must be a 200 whose
recommendations belong to the publish it names.

Prints p50/p99/max, errors during the whole run and within 2 s of each publish, and writes
bench/results/promotion.json. Target: p99 <= 10 ms and 0 errors at 1,000 requests/s. The
p99 is also split into requests scheduled near a publish (2 s before it completes, 1 s after)
and the others: the publisher is a separate process whose CPU competes with the server's
on a small machine (BENCH_PUBLISH_NICE=19 runs it at the lowest priority;
BENCH_SERVER_CPUS=0 gives the server CPU 0 alone, the load generator and the publisher the
others).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import random
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
from pathlib import Path

import duckdb

from bench.collector import wait_healthy

RESULTS = Path(__file__).resolve().parent / "results"
TARGET_P99_MS = 10.0
WRITE_KEY = "bench-app-key"
CONNECTIONS = 64
# the publisher's nice value (BENCH_PUBLISH_NICE=19: a refresh run below the API's priority)
NICE_LEVEL = int(os.environ.get("BENCH_PUBLISH_NICE", "0"))
NICE = ["nice", "-n", str(NICE_LEVEL)] if NICE_LEVEL else []
# BENCH_SERVER_CPUS=0: the server alone on those CPUs, the load generator and the publisher
# on the others (a deployment where the refresh does not share the API's cores)
SERVER_CPUS = {int(c) for c in os.environ.get("BENCH_SERVER_CPUS", "").split(",") if c.strip()}
EXPERIMENTS = {
    "hero_copy": """
        key: hero_copy
        placement: home
        variants:
          - {name: control, weight: 50, content: {headline: "New this week"}}
          - {name: B, weight: 50, content: {headline: "Picked for you"}}
        start: 2020-01-01T00:00:00Z
        end: 2099-01-01T00:00:00Z
        metrics: {primary: purchase, guardrails: [revenue_per_user]}
    """,
    "hero_badge": """
        key: hero_badge
        placement: home
        variants:
          - {name: control, weight: 80}
          - {name: B, weight: 20, content: {badge: "Free shipping"}}
        start: 2020-01-01T00:00:00Z
        end: 2099-01-01T00:00:00Z
        metrics: {primary: purchase}
    """,
    "vip_coupon": """
        key: vip_coupon
        placement: home
        variants:
          - {name: control, weight: 1}
          - {name: B, weight: 1, content: {coupon: "VIP10"}}
        targeting: {include_segments: [bench_vips]}
        start: 2020-01-01T00:00:00Z
        end: 2099-01-01T00:00:00Z
        metrics: {primary: purchase}
    """,
}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def build_warehouse(path: Path, users: int, generation: int) -> None:
    """Synthetic users in the tables the promotion snapshot reads; the products name the
    generation, so an answer shows which publish it came from."""
    with duckdb.connect(str(path)) as con:
        con.execute("create schema if not exists marts; create schema if not exists segments")
        con.execute(f"""
            create or replace table marts.dim_users as
            select 'uk-' || i as user_key, 'user-' || i as user_id,
                   i % 24 as preferred_engagement_hour_utc,
                   1 + i % 7 as preferred_engagement_weekday
            from range({users}) t(i)""")
        con.execute("""
            create or replace table marts.user_send_times as
            select user_key, user_id, preferred_engagement_hour_utc::integer as send_hour_utc,
                   preferred_engagement_weekday::integer as send_weekday,
                   'history' as send_time_source from marts.dim_users""")
        con.execute("""
            create or replace table segments.seg_bench_vips as
            select user_key, user_id from marts.dim_users where hash(user_key) % 10 = 0""")
        con.execute("""
            create or replace table segments.segment_memberships as
            select user_key, 'seg_bench_vips' as segment, now()::timestamp as entered_at
            from segments.seg_bench_vips""")
        con.execute(f"""
            create or replace table marts.user_recommendations as
            select user_key, user_id, r::integer as recommendation_rank,
                   'g{generation}-sku-' || ((hash(user_key) + r) % 5000) as product_id,
                   (10 - r)::bigint as score, 'sku-seen' as evidence_product_id,
                   2::bigint as evidence_sessions, 'because you viewed sku-seen' as evidence
            from marts.dim_users, range(1, 6) t(r)""")


def _publish(warehouse: Path, serving: Path) -> float:
    from ewh.segments.catalog import SegmentSpec
    from ewh.segments.serving import publish_serving_copy

    spec = SegmentSpec(name="seg_bench_vips", rule="bench", owner="bench", refresh="daily",
                       exported=False, description="", unique_id="model.bench.vips")
    publish_serving_copy(warehouse, serving, [spec])
    return time.perf_counter()


class Load:
    def __init__(self, port: int, users: int) -> None:
        self.port, self.users = port, users
        auth = base64.b64encode(f"{WRITE_KEY}:".encode()).decode()
        self.head = (f"Host: 127.0.0.1:{port}\r\nAuthorization: Basic {auth}\r\n"
                     "Connection: keep-alive\r\n\r\n").encode()
        self.latencies: list[tuple[float, float]] = []  # (scheduled, latency)
        self.errors: list[tuple[float, str]] = []
        self.mixed = 0
        self.generations: set[str] = set()

    def _request(self, rng: random.Random) -> bytes:
        if rng.random() < 0.1:
            who = f"anonymousId=visitor-{rng.randrange(10 * self.users)}"
        else:
            who = f"userId=user-{rng.randrange(self.users)}"
        return f"GET /api/promotion?{who}&placement=home HTTP/1.1\r\n".encode() + self.head

    async def _connection(self, queue: asyncio.Queue[float | None], rng: random.Random) -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", self.port)
        try:
            while (scheduled := await queue.get()) is not None:
                try:
                    writer.write(self._request(rng))
                    head = await reader.readuntil(b"\r\n\r\n")
                    length = next(int(line.split(b":")[1]) for line in head.split(b"\r\n")
                                  if line.lower().startswith(b"content-length"))
                    body = await reader.readexactly(length)
                except (OSError, asyncio.IncompleteReadError) as exc:
                    self.errors.append((time.perf_counter(), f"connection: {exc}"))
                    reader, writer = await asyncio.open_connection("127.0.0.1", self.port)
                    continue
                done = time.perf_counter()
                self.latencies.append((scheduled, done - scheduled))
                if not head.startswith(b"HTTP/1.1 200"):
                    self.errors.append((done, head.split(b"\r\n")[0].decode()))
                    continue
                self._check(json.loads(body))
        finally:
            writer.close()

    def _check(self, answer: dict) -> None:
        generations = {r["product_id"].split("-")[0] for r in answer["recommendations"]}
        if len(generations) > 1:
            self.mixed += 1
        self.generations |= generations

    async def run(self, rate: float, seconds: float) -> float:
        queue: asyncio.Queue[float | None] = asyncio.Queue()
        workers = [asyncio.create_task(self._connection(queue, random.Random(n)))
                   for n in range(CONNECTIONS)]
        await asyncio.sleep(0.2)  # connections open
        start = time.perf_counter()
        total = int(rate * seconds)
        for n in range(total):
            scheduled = start + n / rate
            delay = scheduled - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            queue.put_nowait(scheduled)
        for _ in workers:
            queue.put_nowait(None)
        await asyncio.gather(*workers)
        return time.perf_counter() - start


def _p99(ms: list[float]) -> float | None:
    return round(ms[min(len(ms) - 1, int(len(ms) * 0.99))], 2) if ms else None


def run(rate: float, seconds: float, users: int, publishes: int,
        reload_seconds: float = 0.2) -> dict:
    with tempfile.TemporaryDirectory(prefix="ewh-bench-promotion-") as tmp:
        root = Path(tmp)
        serving = root / "serving.duckdb"
        # one warehouse per publish, built beforehand: during the run only publishes happen
        warehouses = [root / f"warehouse-{g}.duckdb" for g in range(1, 2 + publishes)]
        for generation, warehouse in enumerate(warehouses, start=1):
            build_warehouse(warehouse, users, generation)
        _publish(warehouses[0], serving)
        experiments = root / "experiments"
        experiments.mkdir()
        for key, text in EXPERIMENTS.items():
            (experiments / f"{key}.yml").write_text(textwrap.dedent(text))
        port = _free_port()
        env = {**os.environ, "EWH_WRITE_KEYS": WRITE_KEY, "EWH_SERVING": str(serving),
               "EWH_EXPERIMENTS_DIR": str(experiments), "EWH_RATE_LIMIT": "",
               "EWH_PROMOTION_RELOAD_SECONDS": str(reload_seconds)}
        ewh = str(Path(sys.executable).with_name("ewh"))
        process = subprocess.Popen([ewh, "collect", "--host", "127.0.0.1", "--port", str(port),
                                    "--landing-dir", str(root / "landing")], env=env,
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        if SERVER_CPUS:
            others = os.sched_getaffinity(0) - SERVER_CPUS
            os.sched_setaffinity(process.pid, SERVER_CPUS)
            os.sched_setaffinity(0, others)  # the publisher's process inherits it
        published: list[float] = []
        try:
            wait_healthy(port, process, seconds=30)
            load = Load(port, users)

            def publisher() -> None:
                # in another process, as a refresh would: its CPU is not the client's
                for warehouse in warehouses[1:]:
                    time.sleep(seconds / (publishes + 1))
                    subprocess.run([*NICE, sys.executable, "-m", "bench.promotion", "--publish",
                                    str(warehouse), str(serving)], check=True)
                    published.append(time.perf_counter())

            thread = threading.Thread(target=publisher)
            thread.start()
            elapsed = asyncio.run(load.run(rate, seconds))
            thread.join()
        finally:
            process.send_signal(signal.SIGTERM)
            process.wait(timeout=30)
        exposures = sum(p.read_bytes().count(b"Experiment Viewed")
                        for p in (root / "landing").glob("*.ndjson"))
    ms = sorted(x * 1000 for _, x in load.latencies)
    near_publish = [e for e in load.errors if any(abs(e[0] - p) < 2.0 for p in published)]
    # requests scheduled in the 2 s before a publish completed or the 1 s after it (the
    # publish itself, then the snapshot swap), and all the others
    windows = [(p - 2.0, p + 1.0) for p in published]
    during = sorted(x * 1000 for t, x in load.latencies
                    if any(a <= t <= b for a, b in windows))
    steady = sorted(x * 1000 for t, x in load.latencies
                    if not any(a <= t <= b for a, b in windows))
    return {
        "rate_per_s": rate, "seconds": round(elapsed, 2), "users": users,
        "connections": CONNECTIONS, "requests": len(ms),
        "achieved_per_s": round(len(ms) / elapsed),
        "p50_ms": round(statistics.median(ms), 2),
        "p99_ms": round(ms[min(len(ms) - 1, int(len(ms) * 0.99))], 2),
        "max_ms": round(ms[-1], 2),
        "steady_p99_ms": _p99(steady), "publish_window_p99_ms": _p99(during),
        "publish_window_requests": len(during), "publisher_nice": NICE_LEVEL,
        "server_cpus": sorted(SERVER_CPUS),
        "errors": len(load.errors), "errors_near_publish": len(near_publish),
        "error_samples": sorted({e[1] for e in load.errors})[:5],
        "publishes": len(published), "publishes_seen": sorted(load.generations),
        "mixed_answers": load.mixed, "exposures_landed": exposures,
        "target_p99_ms": TARGET_P99_MS,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=1000.0)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--users", type=int, default=50_000)
    parser.add_argument("--publishes", type=int, default=2)
    parser.add_argument("--reload-seconds", type=float, default=0.2,
                        help="EWH_PROMOTION_RELOAD_SECONDS of the server (how soon it swaps)")
    parser.add_argument("--publish", nargs=2, metavar=("WAREHOUSE", "SERVING"),
                        help=argparse.SUPPRESS)  # the publisher's own process
    args = parser.parse_args()
    if args.publish:
        _publish(Path(args.publish[0]), Path(args.publish[1]))
        return
    r = run(args.rate, args.seconds, args.users, args.publishes, args.reload_seconds)
    print(f"promotion bench: GET /api/promotion at {r['rate_per_s']:g}/s for {r['seconds']} s, "
          f"{r['users']:,} users, {r['connections']} connections, loopback")
    print(f"{'req/s':>8}{'p50 ms':>9}{'p99 ms':>9}{'max ms':>9}{'errors':>8}"
          f"{'at publish':>12}{'mixed':>7}")
    print(f"{r['achieved_per_s']:>8,}{r['p50_ms']:>9}{r['p99_ms']:>9}{r['max_ms']:>9}"
          f"{r['errors']:>8}{r['errors_near_publish']:>12}{r['mixed_answers']:>7}")
    print(f"p99 outside publish windows {r['steady_p99_ms']} ms; within them "
          f"({r['publish_window_requests']:,} requests) {r['publish_window_p99_ms']} ms")
    print(f"{r['publishes']} publishes during the run; answers came from {r['publishes_seen']}; "
          f"{r['exposures_landed']:,} exposures landed")
    ok = r["p99_ms"] <= TARGET_P99_MS and r["errors"] == 0 and r["mixed_answers"] == 0
    print(f"target p99 <= {TARGET_P99_MS:g} ms, 0 errors: {'meets' if ok else 'misses'}")
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "promotion.json").write_text(json.dumps(r, indent=2) + "\n")


if __name__ == "__main__":
    main()
