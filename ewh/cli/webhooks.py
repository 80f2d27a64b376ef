"""`ewh webhooks dispatch|list|retry|replay`: segment changes to subscribers (docs/realtime.md)."""

from __future__ import annotations

import argparse
from datetime import UTC, datetime

from ewh.cli.main import Handler, OperationalError, command
from ewh.cli.stop_signals import StopSignals


@command("webhooks", "deliver segment entries and exits to the subscribers in "
                     "activation/subscribers.yml: run the dispatcher, list, retry, replay")
def _webhooks(parser: argparse.ArgumentParser) -> Handler:
    sub = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    dispatch = sub.add_parser("dispatch", help="run the dispatcher (foreground; SIGTERM or "
                                               "Ctrl-C: stop after the cycle in progress; "
                                               "twice: at once)")
    dispatch.add_argument("--once", action="store_true", help="one cycle, then exit")
    dispatch.add_argument("--interval", type=float, default=1.0,
                          help="seconds between cycles (1)")
    sub.add_parser("list", help="each subscriber with its cursor, lag, deliveries, failures "
                                "and dead letters")
    retry = sub.add_parser("retry", help="put dead letters back in the outbox and deliver them")
    retry.add_argument("subscriber", nargs="?", help="only this subscriber's")
    retry.add_argument("--id", dest="change_id", help="only this change (its Idempotency-Key)")
    replay = sub.add_parser("replay", help="move a subscriber's cursor back: later changes "
                                           "are sent again (same Idempotency-Key)")
    replay.add_argument("subscriber")
    replay.add_argument("--since", required=True, type=int,
                        help="a cursor (change_seq): changes after it are sent again; 0 = all")
    return _run


def _run(args: argparse.Namespace) -> int:
    from ewh.activation.dispatcher import (
        BROKER_SINK,
        Dispatcher,
        replay_from,
        retry_dead_letters,
        statuses,
    )
    from ewh.activation.subscribers import SubscriberError, load_subscribers
    from ewh.common.settings import get_settings

    settings = get_settings()
    try:
        subscribers = load_subscribers(settings.webhook_subscribers, settings.webhook_secrets,
                                       require_secrets=args.action in ("dispatch", "retry"))
    except SubscriberError as exc:
        raise OperationalError(str(exc)) from exc
    names = {s.name for s in subscribers} | ({BROKER_SINK} if settings.nats_url else set())
    if args.action == "list":
        print(f"{'subscriber':<28} {'segment':<28} {'cursor':>8} {'lag':>6} {'delivered':>9} "
              f"{'failures':>8} {'dead':>5}  oldest pending")
        for s in statuses(settings, subscribers):
            oldest = f"{s.oldest_pending_seconds:.0f}s" if s.oldest_pending_seconds else "-"
            print(f"{s.name:<28} {s.segment:<28} {s.cursor if s.cursor is not None else '-':>8} "
                  f"{s.lag:>6} {s.deliveries:>9} {s.failures:>8} {s.dead_letters:>5}  {oldest}")
        return 0
    if args.action == "replay":
        if args.subscriber not in names:
            raise OperationalError(f"no subscriber {args.subscriber!r} "
                                   f"(known: {', '.join(sorted(names)) or 'none'})")
        old = replay_from(settings, args.subscriber, args.since)
        print(f"{args.subscriber}: cursor {old} -> {args.since}; the dispatcher sends the "
              "changes after it again")
        return 0
    dispatcher = Dispatcher(settings, subscribers)
    try:
        if args.action == "retry":
            if args.subscriber and args.subscriber not in names:
                raise OperationalError(f"no subscriber {args.subscriber!r}")
            moved = retry_dead_letters(settings, args.subscriber, args.change_id)
            stats = dispatcher.cycle()
            delivered = sum(stats.delivered.values())
            print(f"{moved} dead letters back in the outbox; {delivered} delivered now, "
                  f"{sum(stats.failed.values())} failed again (the dispatcher keeps retrying)")
            return 0
        print(f"dispatching to {len(subscribers)} subscribers"
              f"{' and the broker' if dispatcher.broker else ''}; state {settings.webhook_state}",
              flush=True)

        def report(stats) -> None:  # type: ignore[no-untyped-def]
            if any(stats.delivered.values()) or any(stats.failed.values()):
                now = datetime.now(UTC).strftime("%H:%M:%S")
                print(f"{now} delivered {stats.delivered} failed {stats.failed} "
                      f"dead {stats.dead}", flush=True)

        with StopSignals("ewh webhooks dispatch") as stop:
            dispatcher.run(once=args.once, interval=args.interval, report=report,
                           should_stop=stop, sleep=stop.sleep)
    finally:
        dispatcher.close()
    return 0
