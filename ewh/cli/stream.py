"""`ewh stream broker|replay|consume`: the event stream (docs/realtime.md)."""

from __future__ import annotations

import argparse
from datetime import datetime
from pathlib import Path

from ewh.cli.main import Handler, OperationalError, command
from ewh.cli.stop_signals import StopSignals


def _since(value: str) -> datetime:
    from ewh.common.clock import to_naive_utc

    try:
        return to_naive_utc(datetime.fromisoformat(value.replace("Z", "+00:00")))
    except ValueError as exc:
        raise argparse.ArgumentTypeError(
            f"--since takes an ISO-8601 time (2026-12-06T07:00:00Z), got {value!r}") from exc


@command("stream", "the event stream: run a local broker, replay landing files into it, "
                   "consume it into the warehouse (minute-level refresh)")
def _stream(parser: argparse.ArgumentParser) -> Handler:
    sub = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    broker = sub.add_parser("broker", help="run nats-server with JetStream on loopback "
                                           "(foreground; SIGTERM or Ctrl-C stops it)")
    broker.add_argument("--port", type=int, default=4222, help="port (4222)")
    broker.add_argument("--store-dir", type=Path, default=None,
                        help="JetStream's files (default: <EWH_STREAM_DIR>/broker)")
    replay = sub.add_parser("replay", help="republish events received since a time from the "
                                           "landing files (the broker drops what it has)")
    replay.add_argument("--since", type=_since, required=True,
                        help="receivedAt lower bound, ISO-8601 (UTC when no offset)")
    consume = sub.add_parser("consume", help="micro-batches into DuckDB, then refresh the "
                                             "realtime/hourly segments and the serving copy "
                                             "(SIGTERM or Ctrl-C: stop after the micro-batch "
                                             "in progress; twice: at once)")
    consume.add_argument("--once", action="store_true",
                         help="one micro-batch (and one refresh), then exit")
    consume.add_argument("--cycles", type=int, default=None, help="stop after N micro-batches")
    return _run


def _run(args: argparse.Namespace) -> int:
    from ewh.common.settings import get_settings

    settings = get_settings()
    if args.action == "broker":
        return _broker(settings, args)
    if not settings.nats_url:
        raise OperationalError("EWH_NATS_URL is not set (e.g. nats://127.0.0.1:4222)")
    if args.action == "replay":
        from ewh.stream.replay import replay

        result = replay(settings.nats_url, settings.landing_dir, args.since,
                        settings.stream_duplicate_window_seconds, settings.stream_max_age_seconds)
        print(f"replayed {result.read} events from {result.files} landing files: "
              f"{result.published} published, {result.duplicates} already in the stream, "
              f"{result.unreadable} unreadable lines")
        for problem in result.problems or []:
            print(f"  {problem}")
        return 0
    return _consume(settings, args)


def _broker(settings, args: argparse.Namespace) -> int:  # type: ignore[no-untyped-def]
    from ewh.stream.broker import NatsBroker

    store = args.store_dir or settings.stream_dir / "broker"
    with StopSignals("ewh stream broker") as stop, NatsBroker(store, port=args.port) as broker:
        print(f"NATS JetStream on {broker.url} (store {store}); "
              f"set EWH_NATS_URL={broker.url}", flush=True)
        while not stop() and broker.process is not None and broker.process.poll() is None:
            stop.sleep(0.5)
    return 0


def _consume(settings, args: argparse.Namespace) -> int:  # type: ignore[no-untyped-def]
    from ewh.stream.consumer import CycleResult, consume
    from ewh.stream.refresh import fast_segments, load_segments

    segments = load_segments(settings)
    names = ", ".join(s.name for s in fast_segments(segments))
    print(f"consuming {settings.nats_url} into {settings.warehouse}; fast segments: {names}",
          flush=True)

    def report(result: CycleResult) -> None:
        if result.stopping:
            print(f"{result.finished_at:%H:%M:%S} stopping: {result.events} events handed "
                  "back unloaded", flush=True)
            return
        if result.busy:
            print(f"{result.finished_at:%H:%M:%S} warehouse busy (another writer): "
                  f"{result.events} events handed back", flush=True)
            return
        if result.refresh is None:
            return
        load = result.load
        loaded = (f"{load.rows_loaded} loaded, {load.rows_duplicate} duplicate, "
                  f"{load.rows_rejected} rejected" if load else "no new events")
        recorded = result.refresh.recorded
        print(f"{result.finished_at:%H:%M:%S} {result.events} events ({loaded}); refreshed in "
              f"{result.refresh.dbt_seconds:.1f}s + publish {result.refresh.publish_seconds:.1f}s"
              f"; {recorded.changes} membership changes at {recorded.as_of}", flush=True)

    with StopSignals("ewh stream consume") as stop:
        consume(settings, segments, once=args.once, max_cycles=args.cycles, report=report,
                should_stop=stop)
    if stop():
        print("stopped", flush=True)
    return 0
