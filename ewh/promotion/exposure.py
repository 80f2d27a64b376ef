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

import hashlib
from datetime import datetime
from typing import Any

from ewh.collector.intake import Intake, iso_utc
from ewh.promotion.assignment import Decision

EVENT = "Experiment Viewed"
LIBRARY = {"name": "ewh-promotion", "version": "1"}
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
    def __init__(self, intake: Intake) -> None:
        self.intake = intake
        self._landed: set[str] = set()

    async def log(self, decisions: list[Decision], unit_kind: str, unit: str,
                  now: datetime, request_id: str) -> None:
        """Land one exposure per served decision not landed by this process yet; returns once
        they are durable (the landing writer's group commit)."""
        messages = [exposure_message(d, unit_kind, unit, now) for d in decisions
                    if d.variant is not None]
        fresh = [m for m in messages if m["messageId"] not in self._landed]
        if not fresh:
            return
        lines, result = self.intake.check(fresh, now, request_id)
        if result.errors:  # e.g. an id over the contract's length: answer, but say why
            raise ValueError("; ".join(e["detail"] for e in result.errors))
        await self.intake.land(lines)
        if len(self._landed) > MAX_REMEMBERED:
            self._landed.clear()
        self._landed.update(m["messageId"] for m in fresh)
