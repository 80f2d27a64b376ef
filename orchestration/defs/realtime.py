"""Real-time activation in Dagster (docs/realtime.md):

- `segments/segment_changes`: the change log, recorded after every build of the membership
  history (the hourly refresh too), before the serving copy is published;
- job `stream_micro_batch` (one micro-batch of `ewh stream consume`, in the one-writer pool,
  so it holds the warehouse for one micro-batch) and the sensor `event_stream_sensor` that
  requests it when the stream has events waiting or the refresh interval has passed (off by
  default: turn it on, or run `ewh stream consume`, when EWH_NATS_URL is set);
- one asset per webhook subscriber (activation/subscribers.yml) and the broker, observed by
  `webhook_status_sensor` every minute: lag, pending, deliveries, failures, dead letters,
  with the check `no_dead_letters` (warning) reported beside them. Delivery itself is the
  dispatcher's (`ewh webhooks dispatch`): a long-running process, not a run per minute.
"""


import asyncio
import time
from typing import Any

import dagster as dg
import duckdb

from ewh.activation.changes import record_changes
from ewh.activation.dispatcher import BROKER_SINK, statuses
from ewh.activation.subscribers import Subscriber, SubscriberError, load_subscribers
from ewh.common.settings import Settings, get_settings
from orchestration.pools import WAREHOUSE_POOL
from orchestration.project import warehouse_project
from orchestration.resources import WarehouseSettings
from orchestration.translator import asset_key_for

SEGMENT_CHANGES = asset_key_for("segments", "segment_changes")
HISTORY = asset_key_for("segments", "segment_membership_history")
ACTIVATION_GROUP = "activation"
MICRO_BATCH_JOB = "stream_micro_batch"
NO_DEAD_LETTERS = "no_dead_letters"


@dg.asset(
    key=SEGMENT_CHANGES,
    deps=[HISTORY],
    group_name=ACTIVATION_GROUP,
    kinds={"duckdb"},
    owners=["team:marketing-ops"],  # as the membership tables it is read from
    pool=WAREHOUSE_POOL,
    description="Every entry and exit this build's evaluation made (segments.segment_changes): "
    "user, segment, time, evidence and a growing change_seq, the cursor of the pull API, the "
    "webhooks and the broker subject.",
)
def segment_changes(context: dg.AssetExecutionContext,
                    settings: WarehouseSettings) -> dg.MaterializeResult:
    with duckdb.connect(str(settings.get().warehouse)) as con:
        recorded = record_changes(con)
    context.log.info(f"{recorded.changes} changes at {recorded.as_of}")
    return dg.MaterializeResult(metadata={
        "changes": dg.MetadataValue.int(recorded.changes),
        "as_of": str(recorded.as_of),
        "last_change_seq": dg.MetadataValue.int(recorded.last_seq or 0)})


@dg.op(pool=WAREHOUSE_POOL)
def consume_one_micro_batch(context: dg.OpExecutionContext, settings: WarehouseSettings) -> None:
    """One micro-batch: load, refresh the realtime/hourly segments, publish."""
    from ewh.stream.consumer import consume
    from ewh.stream.refresh import load_segments

    where = settings.get()

    def report(result) -> None:  # type: ignore[no-untyped-def]
        if result.refresh is not None:
            context.log.info(f"{result.events} events; {result.refresh.recorded.changes} "
                             f"changes; dbt {result.refresh.dbt_seconds:.1f}s")

    consume(where, load_segments(where), once=True, report=report)


@dg.job(name=MICRO_BATCH_JOB, description="One micro-batch of the event stream into DuckDB, "
        "then the realtime/hourly segments, the change log and the serving copy.")
def stream_micro_batch() -> None:
    consume_one_micro_batch()


async def _pending(url: str) -> int:
    import nats

    from ewh.stream.subjects import EVENTS_STREAM, LOADER_CONSUMER

    nc = await nats.connect(url, connect_timeout=2, max_reconnect_attempts=0)
    try:
        info = await nc.jetstream().consumer_info(EVENTS_STREAM, LOADER_CONSUMER)
        return int(info.num_pending or 0)
    except Exception:  # noqa: BLE001 - no consumer yet: everything in the stream waits
        info = await nc.jetstream().stream_info(EVENTS_STREAM)
        return int(info.state.messages)
    finally:
        await nc.close()


@dg.sensor(job=stream_micro_batch, minimum_interval_seconds=30,
           default_status=dg.DefaultSensorStatus.STOPPED)
def event_stream_sensor(context: dg.SensorEvaluationContext, settings: WarehouseSettings):
    """A micro-batch when events wait in the stream, or the refresh interval has passed."""
    where = settings.get()
    if not where.nats_url:
        return dg.SkipReason("EWH_NATS_URL is not set")
    try:
        pending = asyncio.run(_pending(where.nats_url))
    except Exception as exc:  # noqa: BLE001 - broker down: the landing sensor still loads
        return dg.SkipReason(f"the broker does not answer: {exc}")
    last = float(context.cursor or 0)
    if pending == 0 and time.time() - last < where.stream_refresh_seconds:
        return dg.SkipReason("no events waiting")
    context.update_cursor(str(time.time()))
    return dg.RunRequest(tags={"ewh/pending_events": str(pending)})


def _subscribers(settings: Settings) -> list[Subscriber]:
    try:
        return load_subscribers(settings.webhook_subscribers, settings.webhook_secrets,
                                require_secrets=False)
    except SubscriberError:
        return []  # the dispatcher and `ewh webhooks list` say what is wrong


def subscriber_key(name: str) -> dg.AssetKey:
    return dg.AssetKey([ACTIVATION_GROUP, name])


def subscriber_specs(subscribers: list[Subscriber], broker: bool) -> list[dg.AssetSpec]:
    specs = [dg.AssetSpec(subscriber_key(s.name), deps=[SEGMENT_CHANGES],
                          group_name=ACTIVATION_GROUP, kinds={"webhook"},
                          owners=["team:marketing-ops"],
                          description=f"Webhook subscriber {s.name}: {', '.join(s.changes)} "
                          f"of {s.segment}, POSTed signed to {s.url}.",
                          metadata={"segment": s.segment, "url": s.url})
             for s in subscribers]
    if broker:
        specs.append(dg.AssetSpec(subscriber_key(BROKER_SINK), deps=[SEGMENT_CHANGES],
                                  group_name=ACTIVATION_GROUP, kinds={"nats"},
                                  owners=["team:marketing-ops"],
                                  description="Every change, published to "
                                  "ewh.segments.<segment>.<entered|exited>."))
    return specs


def status_events(settings: Settings, subscribers: list[Subscriber]) -> list[Any]:
    events: list[Any] = []
    for s in statuses(settings, subscribers):
        key = subscriber_key(s.name)
        events.append(dg.AssetObservation(asset_key=key, metadata={
            "lag": dg.MetadataValue.int(s.lag), "pending": dg.MetadataValue.int(s.pending),
            "deliveries": dg.MetadataValue.int(s.deliveries),
            "failures": dg.MetadataValue.int(s.failures),
            "dead_letters": dg.MetadataValue.int(s.dead_letters),
            "oldest_pending_seconds": dg.MetadataValue.float(s.oldest_pending_seconds or 0.0),
            "cursor": dg.MetadataValue.int(s.cursor or 0)}))
        events.append(dg.AssetCheckEvaluation(
            asset_key=key, check_name=NO_DEAD_LETTERS, passed=s.dead_letters == 0,
            severity=dg.AssetCheckSeverity.WARN,
            metadata={"dead_letters": s.dead_letters},
            description="`ewh webhooks retry` delivers dead letters again"))
    return events


def build_status_checks(keys: list[dg.AssetKey]) -> dg.AssetChecksDefinition | None:
    if not keys:
        return None

    @dg.multi_asset_check(specs=[dg.AssetCheckSpec(NO_DEAD_LETTERS, asset=k) for k in keys])
    def webhook_dead_letters(settings: WarehouseSettings):
        where = settings.get()
        for s in statuses(where, _subscribers(where)):
            yield dg.AssetCheckResult(asset_key=subscriber_key(s.name),
                                      check_name=NO_DEAD_LETTERS, passed=s.dead_letters == 0,
                                      severity=dg.AssetCheckSeverity.WARN,
                                      metadata={"dead_letters": s.dead_letters})

    return webhook_dead_letters


@dg.sensor(minimum_interval_seconds=60, default_status=dg.DefaultSensorStatus.RUNNING)
def webhook_status_sensor(context: dg.SensorEvaluationContext, settings: WarehouseSettings):
    """Per subscriber: lag, deliveries, failures and dead letters, as asset observations."""
    where = settings.get()
    subscribers = _subscribers(where)
    if not subscribers and not where.nats_url or not where.webhook_state.exists():
        return dg.SkipReason("no dispatcher state yet")
    return dg.SensorResult(asset_events=status_events(where, subscribers))


@dg.definitions
def defs() -> dg.Definitions:
    warehouse_project()  # the manifest is ready (the history model is one of its assets)
    settings = get_settings()
    subscribers = _subscribers(settings)
    specs = subscriber_specs(subscribers, bool(settings.nats_url))
    checks = build_status_checks([spec.key for spec in specs])
    return dg.Definitions(
        assets=[segment_changes, *specs],
        asset_checks=[checks] if checks is not None else [],
        jobs=[stream_micro_batch],
        sensors=[event_stream_sensor, webhook_status_sensor],
    )
