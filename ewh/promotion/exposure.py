"""`Experiment Viewed` exposures, landed through the collector's own intake path.

Each served assignment is one track event whose messageId is derived from the experiment, the
unit and (for forced views) the forced variant: serving it again, after a restart or from
another process, lands the same messageId, and the loader keeps one row per messageId. So a
user's exposure to an experiment is in the warehouse exactly once whatever happens to the
server; the in-process set only spares the landing zone the repeats.

Forced views (`?variant=`) carry properties.forced_variant = true and their own messageId;
staging reads that flag and fct_experiment_results leaves them out.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from datetime import datetime
from typing import Any

from ewh.collector.intake import Intake, iso_utc
from ewh.common.clock import utc_now
from ewh.promotion.assignment import Decision

EVENT = "Experiment Viewed"
LIBRARY = {"name": "ewh-promotion", "version": "1"}
log = logging.getLogger("ewh.promotion")
MAX_REMEMBERED = 1_000_000  # message ids kept to skip repeats; cleared (not grown) past this


def exposure_message_id(experiment_key: str, unit_kind: str, unit: str,
                        forced_variant: str | None = None) -> str:
    seed = f"{experiment_key}\x00{unit_kind}\x00{unit}"
    if forced_variant is not None:
        seed += f"\x00forced\x00{forced_variant}"
    return "exposure-" + hashlib.sha256(seed.encode("utf-8", "surrogatepass")).hexdigest()[:40]


def exposure_message(decision: Decision, unit_kind: str, unit: str,
                     now: datetime) -> dict[str, Any]:
    experiment = decision.experiment
    properties: dict[str, Any] = {"experiment_id": experiment.key,
                                  "experiment_name": experiment.key,
                                  "variation_name": decision.variant,
                                  "placement": experiment.placement}
    if decision.forced:
        properties["forced_variant"] = True
    return {
        "type": "track",
        "event": EVENT,
        "messageId": exposure_message_id(experiment.key, unit_kind, unit,
                                         decision.variant if decision.forced else None),
        unit_kind: unit,
        "timestamp": iso_utc(now),
        "properties": properties,
        "context": {"library": LIBRARY},
    }


class ExposureLog:
    """Lands exposures off the request path: `submit` only queues them, and one background
    task checks and lands whatever has queued, together, with one durable append (the
    landing writer's group commit). An answer never waits for an fsync; the window in which
    a crash can lose a queued exposure is one append long, and the user's next view (after
    the restart) lands it again under the same messageId."""

    def __init__(self, intake: Intake) -> None:
        self.intake = intake
        self._landed: set[str] = set()  # queued or landed by this process
        self._queue: list[dict[str, Any]] = []
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.failures = 0
        self._stopping = False

    def start(self) -> None:
        self._task = asyncio.create_task(self._run())

    async def stop(self) -> None:
        """Land what is queued, then stop (an append in flight is finished, not cancelled)."""
        self._stopping = True
        self._wake.set()
        if self._task is not None:
            await self._task
        await self._land_queued()

    def submit(self, decisions: list[Decision], unit_kind: str, unit: str,
               now: datetime) -> None:
        for decision in decisions:
            if decision.variant is None:
                continue
            message = exposure_message(decision, unit_kind, unit, now)
            if message["messageId"] in self._landed:
                continue
            if len(self._landed) > MAX_REMEMBERED:
                self._landed.clear()
            self._landed.add(message["messageId"])
            self._queue.append(message)
        if self._queue:
            self._wake.set()

    async def _run(self) -> None:
        while not self._stopping:
            await self._wake.wait()
            self._wake.clear()
            await self._land_queued()

    async def _land_queued(self) -> None:
        messages, self._queue = self._queue, []
        if not messages:
            return
        lines, result = self.intake.check(messages, utc_now(), "exposures")
        for error in result.errors:  # e.g. refused by EWH_CONSENT_POLICY=reject
            log.warning("exposure not landed: %s", error["detail"])
        try:
            await self.intake.land(lines)
        except Exception:  # noqa: BLE001 - nothing landed: let the next view retry
            self.failures += 1
            log.exception("landing %d exposures failed", len(lines))
            self._landed.difference_update(m["messageId"] for m in messages)
