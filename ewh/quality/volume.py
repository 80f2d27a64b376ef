"""Segment volume anomalies: the size of each segment compared with the previous run.

The previous sizes live in a small JSON file beside the warehouse
(``data/warehouse.segment_sizes.json`` for ``data/warehouse.duckdb``), so they survive
restarts and follow the warehouse they describe.

Tolerance: a segment of ``n`` members last run may now hold between
``floor(n * (1 - TOLERANCE)) - SLACK`` and ``ceil(n * (1 + TOLERANCE)) + SLACK`` members,
i.e. +/-50 % plus 10 members (the slack keeps tiny segments from alarming on noise).
Outside that band the segment suite warns; it does not block, because a real change of
rule or traffic also moves sizes. The size is recorded after every run whose segment suite
had no error-level failure, so a warning is raised once per jump, not forever.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

TOLERANCE = 0.5
SLACK = 10

# Suite parameter names used by the segment template.
VOLUME_MIN = "volume_min"
VOLUME_MAX = "volume_max"


@dataclass(frozen=True)
class Band:
    previous: int | None
    low: int
    high: int | None  # None: no upper bound (no previous run)

    def as_parameters(self) -> dict[str, int | None]:
        return {VOLUME_MIN: self.low, VOLUME_MAX: self.high}

    def describe(self) -> str:
        if self.previous is None:
            return "no previous run recorded"
        return (f"previous run {self.previous}, tolerance +/-{TOLERANCE:.0%} + {SLACK}: "
                f"[{self.low}, {self.high}]")


def band(previous: int | None) -> Band:
    """The accepted sizes after a run that had ``previous`` members (None: first run)."""
    if previous is None:
        return Band(None, 0, None)
    low = max(0, math.floor(previous * (1 - TOLERANCE)) - SLACK)
    return Band(previous, low, math.ceil(previous * (1 + TOLERANCE)) + SLACK)


def baseline_path(warehouse: Path) -> Path:
    return warehouse.with_name(f"{warehouse.stem}.segment_sizes.json")


def read_sizes(warehouse: Path) -> dict[str, int]:
    path = baseline_path(warehouse)
    if not path.exists():
        return {}
    data = json.loads(path.read_text())
    return {name: int(entry["members"]) for name, entry in data.items()}


def record_sizes(warehouse: Path, sizes: dict[str, int], as_of: datetime) -> None:
    """Merge ``sizes`` into the file atomically (write a temp file, then rename)."""
    if not sizes:
        return
    path = baseline_path(warehouse)
    data = json.loads(path.read_text()) if path.exists() else {}
    for name, members in sizes.items():
        data[name] = {"members": members, "as_of": as_of.isoformat(sep=" ")}
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    with os.fdopen(fd, "w") as handle:
        json.dump(data, handle, indent=2, sort_keys=True)
    os.replace(tmp, path)
