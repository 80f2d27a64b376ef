"""Real-time activation latency: event -> serving-copy change -> webhook, at 1,000 events/s.

`python -m bench.realtime [--seconds 60] [--rate 1000] [--events 20000] [--keep]` builds a small
warehouse (generated events ending now, the real dbt), then runs everything for real on
loopback: nats-server (JetStream), `ewh collect` publishing to it, `ewh stream consume`
(micro-batches, the fast-segment refresh, the serving copy), `ewh webhooks dispatch` and an
HTTP receiver subscribed to `seg_high_intent` entries.

For `--seconds` it posts `--rate` events/s in batches of 100 (every 0.1 s); once a second one
batch carries a probe: a new user viewing one product 3 times, which the next refresh puts in
seg_high_intent. Per probe it records when the events were acknowledged, when the entry
appeared in the serving copy's change log (polled every 0.25 s) and when the receiver got
the signed webhook. Prints p50/p99 of both against the targets (p99 <= 60 s, p50 <= 20 s) and
writes bench/results/realtime.json.
"""

from __future__ import annotations

import argparse
import base64
import http.client
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import duckdb

from ewh.common.clock import utc_now
from ewh.common.settings import PROJECT_ROOT
from ewh.ingest.loader import load_files
from ewh.sample.generator import generate
from ewh.segments.catalog import segments_from_manifest
from ewh.segments.serving import publish_serving_copy
from ewh.stream.broker import NatsBroker, free_port

RESULTS = Path(__file__).resolve().parent / "results"
BIN = Path(sys.executable).parent
WRITE_KEY = "bench-write-key"
SECRET = "bench-webhook-secret-0123456789"
TARGET_P99_S, TARGET_P50_S = 60.0, 20.0
BATCH = 100
CONSENT = {"consent": {"categoryPreferences": {"analytics": True}}}


def build(root: Path, events: int) -> None:
    end = utc_now().replace(microsecond=0) - timedelta(minutes=5)
    generate(root / "seed", events=events, seed=21, days=7, end=end)
    load_files(sorted((root / "seed").glob("*.ndjson")), root / "warehouse.duckdb",
               landing_dir=root / "seed")
    env = {**os.environ, "EWH_WAREHOUSE": str(root / "warehouse.duckdb")}
    subprocess.run([str(BIN / "dbt"), "build", "--quiet", "--exclude-resource-type",
                    "unit_test", "--vars", json.dumps({"as_of": str(end)}),
                    "--project-dir", str(PROJECT_ROOT), "--profiles-dir", str(PROJECT_ROOT),
                    "--target-path", str(root / "dbt" / "target"),
                    "--log-path", str(root / "dbt" / "logs")], env=env, check=True,
                   cwd=PROJECT_ROOT, stdout=subprocess.DEVNULL)
    manifest = json.loads((root / "dbt" / "target" / "manifest.json").read_text())
    publish_serving_copy(root / "warehouse.duckdb", root / "serving.duckdb",
                         segments_from_manifest(manifest))


class Receiver:
    def __init__(self) -> None:
        self.first: dict[str, float] = {}
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                if body.get("change") == "entered":
                    receiver.first.setdefault(body.get("user_id") or "", time.time())
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/hooks"


def _event(user: str, product: str, now: str, run: str, i: int) -> dict:
    return {"type": "track", "event": "Product Viewed", "userId": user,
            "messageId": f"{run}-{i}", "timestamp": now, "context": CONSENT,
            "properties": {"product_id": product, "price": 10.0}}


def load(port: int, seconds: float, rate: int, sent: dict[str, float]) -> int:
    """Post `rate` events/s for `seconds`; returns how many were acknowledged."""
    auth = "Basic " + base64.b64encode(f"{WRITE_KEY}:".encode()).decode()
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    run, counter, acked = uuid.uuid4().hex[:8], 0, 0
    interval = BATCH / rate
    start = time.monotonic()
    tick = 0
    while time.monotonic() - start < seconds:
        now = utc_now().isoformat(timespec="milliseconds") + "Z"
        batch = []
        probe = None
        if tick % max(1, round(1 / interval)) == 0:
            probe = f"probe-{run}-{tick}"
            batch += [_event(probe, f"sku-probe-{tick}", now, run, counter + k) for k in range(3)]
            counter += 3
        while len(batch) < BATCH:
            batch.append(_event(f"bg-{counter % 5000}", f"sku-{counter}", now, run, counter))
            counter += 1
        connection.request("POST", "/v1/batch", json.dumps({"batch": batch}),
                           {"Authorization": auth, "Content-Type": "application/json"})
        answer = connection.getresponse()
        answer.read()
        if answer.status == 200:
            acked += len(batch)
            if probe:
                sent[probe] = time.time()
        tick += 1
        time.sleep(max(0.0, start + tick * interval - time.monotonic()))
    connection.close()
    return acked


def watch_serving(serving: Path, seen: dict[str, float], stop: threading.Event) -> None:
    while not stop.is_set():
        try:
            with duckdb.connect(str(serving), read_only=True) as con:
                rows = con.execute(
                    "select user_id from segments.segment_changes where segment = "
                    "'seg_high_intent' and change = 'entered' and user_id like 'probe-%'"
                ).fetchall()
            now = time.time()
            for (user,) in rows:
                seen.setdefault(user, now)
        except duckdb.Error:
            pass  # between a publish's rename and the table: try again
        stop.wait(0.25)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--rate", type=int, default=1000)
    parser.add_argument("--events", type=int, default=20_000, help="the warehouse's history")
    parser.add_argument("--drain", type=float, default=120.0, help="wait for late probes")
    parser.add_argument("--keep", action="store_true", help="keep the work folder")
    args = parser.parse_args(argv)
    root = Path(tempfile.mkdtemp(prefix="ewh-bench-realtime-"))
    started = time.time()
    print(f"building a warehouse of {args.events} generated events in {root} ...", flush=True)
    build(root, args.events)
    print(f"built in {time.time() - started:.0f}s", flush=True)
    receiver = Receiver()
    (root / "subscribers.yml").write_text(json.dumps({"subscribers": [{
        "name": "bench", "segment": "high_intent", "url": receiver.url, "secret": "bench",
        "changes": ["entered"]}]}))
    processes: list[subprocess.Popen] = []
    with NatsBroker(root / "broker") as broker:
        env = {**os.environ, "EWH_WAREHOUSE": str(root / "warehouse.duckdb"),
               "EWH_SERVING": str(root / "serving.duckdb"),
               "EWH_LANDING_DIR": str(root / "landing"), "EWH_STREAM_DIR": str(root / "stream"),
               "EWH_DBT_TARGET_DIR": str(root / "dbt" / "target"),
               "EWH_NATS_URL": broker.url, "EWH_WRITE_KEYS": WRITE_KEY,
               "EWH_RATE_LIMIT": "", "EWH_WEBHOOK_STATE": str(root / "webhooks.sqlite"),
               "EWH_WEBHOOK_SUBSCRIBERS": str(root / "subscribers.yml"),
               "EWH_WEBHOOK_SECRETS": f"bench={SECRET}",
               "EWH_STREAM_BATCH_WAIT_SECONDS": "0.5", "EWH_STREAM_REFRESH_SECONDS": "5"}
        env.setdefault("EWH_PSEUDONYM_KEY", "bench-only-pseudonym-key-0123456789abcdef")
        env.setdefault("EWH_KEY_STORE", str(root / "keystore"))
        port = free_port()
        log = open(root / "processes.log", "ab")  # noqa: SIM115
        try:
            # Warm-up: the consumer's first dbt call parses the project.
            subprocess.run([str(BIN / "ewh"), "stream", "consume", "--once"], env=env,
                           check=True, stdout=log, stderr=log, cwd=PROJECT_ROOT)
            for command in (["collect", "--host", "127.0.0.1", "--port", str(port)],
                            ["stream", "consume"], ["webhooks", "dispatch", "--interval", "0.5"]):
                processes.append(subprocess.Popen([str(BIN / "ewh"), *command], env=env,
                                                  stdout=log, stderr=log, cwd=PROJECT_ROOT))
            deadline = time.time() + 30
            while time.time() < deadline:
                try:
                    http.client.HTTPConnection("127.0.0.1", port, timeout=1).request(
                        "GET", "/health")
                    break
                except OSError:
                    time.sleep(0.1)
            sent: dict[str, float] = {}
            serving_seen: dict[str, float] = {}
            stop = threading.Event()
            watcher = threading.Thread(target=watch_serving,
                                       args=(root / "serving.duckdb", serving_seen, stop))
            watcher.start()
            print(f"posting {args.rate} events/s for {args.seconds:.0f}s ...", flush=True)
            load_started = time.time()
            acked = load(port, args.seconds, args.rate, sent)
            achieved = acked / (time.time() - load_started)
            deadline = time.time() + args.drain
            while time.time() < deadline and len(receiver.first) < len(sent):
                time.sleep(0.5)
            stop.set()
            watcher.join()
        finally:
            for process in processes:
                process.terminate()
            for process in processes:
                try:
                    process.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    process.kill()
            log.close()
    to_serving = [serving_seen[p] - t for p, t in sent.items() if p in serving_seen]
    to_webhook = [receiver.first[p] - t for p, t in sent.items() if p in receiver.first]
    result = {
        "rate_target": args.rate, "rate_achieved": round(achieved, 1), "events_acked": acked,
        "probes": len(sent), "probes_in_serving": len(to_serving),
        "probes_delivered": len(to_webhook),
        "serving_p50_s": round(statistics.median(to_serving), 2) if to_serving else None,
        "serving_p99_s": round(percentile(to_serving, 0.99), 2) if to_serving else None,
        "webhook_p50_s": round(statistics.median(to_webhook), 2) if to_webhook else None,
        "webhook_p99_s": round(percentile(to_webhook, 0.99), 2) if to_webhook else None,
        "webhook_max_s": round(max(to_webhook), 2) if to_webhook else None,
        "work_dir": str(root) if args.keep else None,
    }
    ok = (bool(to_webhook) and len(to_webhook) == len(sent)
          and result["webhook_p99_s"] <= TARGET_P99_S and result["webhook_p50_s"] <= TARGET_P50_S)
    result["verdict"] = "PASS" if ok else "MISS"
    print(f"{'rate (events/s)':<34}{achieved:>10.0f}  (target {args.rate})")
    print(f"{'probes delivered':<34}{len(to_webhook):>10} / {len(sent)}")
    print(f"{'event -> serving copy p50 / p99':<34}{result['serving_p50_s']!s:>10} / "
          f"{result['serving_p99_s']} s")
    print(f"{'event -> webhook p50 / p99':<34}{result['webhook_p50_s']!s:>10} / "
          f"{result['webhook_p99_s']} s  (targets {TARGET_P50_S:.0f} / {TARGET_P99_S:.0f} s): "
          f"{result['verdict']}")
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "realtime.json").write_text(json.dumps(result, indent=2) + "\n")
    if not args.keep:
        shutil.rmtree(root, ignore_errors=True)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
