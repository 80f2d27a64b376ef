"""Deterministic, stateless assignment: sha256("<salt>:<unit>") picks a variant by weight.

The unit is the userId, or the anonymousId for a visitor not yet known. The first 52 bits of
the digest, divided by 2**52, are a number u in [0, 1) that is the same on every machine and
after every restart; the variant is the first whose cumulative weight share exceeds u. No
table of assignments exists, so nothing can drift or be lost.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from ewh.promotion.experiments import Experiment

Reason = Literal["assigned", "forced", "not_running", "not_targeted"]
UNIT_SCALE = float(1 << 52)


def unit_interval(salt: str, unit: str) -> float:
    digest = hashlib.sha256(f"{salt}:{unit}".encode("utf-8", "surrogatepass")).digest()
    return (int.from_bytes(digest[:8], "big") >> 12) / UNIT_SCALE


def pick_variant(experiment: Experiment, unit: str) -> str:
    """The variant `unit` gets by the experiment's weights (targeting not considered)."""
    u = unit_interval(experiment.hash_salt, unit)
    total = sum(v.weight for v in experiment.variants)
    cumulative = 0.0
    for variant in experiment.variants:
        cumulative += variant.weight / total
        if u < cumulative:
            return variant.name
    return experiment.variants[-1].name  # u just under 1 and rounding: the last variant


def is_targeted(experiment: Experiment, segments: frozenset[str]) -> bool:
    include, exclude = experiment.targeting.include_segments, experiment.targeting.exclude_segments
    if include and not segments.intersection(include):
        return False
    return not segments.intersection(exclude)


@dataclass(frozen=True, slots=True)
class Decision:
    experiment: Experiment
    variant: str | None
    reason: Reason

    @property
    def forced(self) -> bool:
        return self.reason == "forced"


def decide(experiment: Experiment, unit: str, segments: frozenset[str], now: datetime,
           forced: str | None = None) -> Decision:
    """The variant for `unit` now. A forced variant (QA, `?variant=`) skips targeting but not
    the schedule; it is marked so the analysis leaves it out."""
    if not experiment.running(now):
        return Decision(experiment, None, "not_running")
    if forced is not None and experiment.variant(forced) is not None:
        return Decision(experiment, forced, "forced")
    if not is_targeted(experiment, segments):
        return Decision(experiment, None, "not_targeted")
    return Decision(experiment, pick_variant(experiment, unit), "assigned")
