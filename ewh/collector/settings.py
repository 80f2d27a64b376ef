"""Collector settings, read from the environment (the CLI sets them from its flags)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from ewh.paths import landing_dir, serving_path

ConsentPolicy = Literal["accept_and_flag", "reject"]
CONSENT_POLICIES: tuple[ConsentPolicy, ...] = ("accept_and_flag", "reject")


@dataclass(frozen=True, slots=True)
class CollectorSettings:
    write_keys: frozenset[str]
    landing_dir: Path
    consent_policy: ConsentPolicy = "accept_and_flag"
    max_file_bytes: int = 64 << 20  # rotate a landing file at this size...
    max_file_age_seconds: float = 60.0  # ...or this age, so the loader sees events soon
    max_message_bytes: int = 32 * 1024  # Segment: 32 KB per message
    max_batch_bytes: int = 500 * 1024  # Segment: 500 KB per batch request
    max_engagement_batch: int = 100  # engagement API: events per /api/engagement/events call
    serving_path: Path = Path("data/serving.duckdb")  # what the segment API reads (read-only)

    @classmethod
    def from_env(cls) -> CollectorSettings:
        keys = frozenset(k.strip() for k in os.environ.get("EWH_WRITE_KEYS", "").split(",")
                         if k.strip())
        policy = os.environ.get("EWH_CONSENT_POLICY", "accept_and_flag").strip().lower()
        if policy not in CONSENT_POLICIES:
            raise ValueError(f"EWH_CONSENT_POLICY={policy!r}: expected one of "
                             f"{', '.join(CONSENT_POLICIES)}")
        return cls(
            write_keys=keys,
            landing_dir=landing_dir(),
            serving_path=serving_path(),
            consent_policy=policy,  # type: ignore[arg-type]
            max_file_bytes=int(os.environ.get("EWH_LANDING_MAX_BYTES", 64 << 20)),
            max_file_age_seconds=float(os.environ.get("EWH_LANDING_MAX_AGE_SECONDS", 60)),
        )
