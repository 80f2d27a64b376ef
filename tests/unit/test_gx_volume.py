"""The segment volume tolerance: +/-50 % of the previous run's size, plus 10 members."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pytest

from ewh.quality import volume


@pytest.mark.parametrize(("previous", "low", "high"), [
    (100, 40, 160),      # floor(50) - 10, ceil(150) + 10
    (7, 0, 21),          # floor(3.5) - 10 < 0 -> 0; ceil(10.5) + 10
    (0, 0, 10),          # an empty segment may grow to 10 without alarm
    (1001, 490, 1512),   # floor(500.5) - 10, ceil(1501.5) + 10
])  # fmt: skip
def test_band_is_half_the_previous_size_either_way_plus_ten(
    previous: int, low: int, high: int
) -> None:
    band = volume.band(previous)
    assert (band.low, band.high) == (low, high)
    assert band.as_parameters() == {"volume_min": low, "volume_max": high}


def test_first_run_accepts_any_size() -> None:
    band = volume.band(None)
    assert (band.low, band.high) == (0, None)
    assert band.describe() == "no previous run recorded"


def test_sizes_are_kept_beside_the_warehouse_and_merged(tmp_path: Path) -> None:
    warehouse = tmp_path / "warehouse.duckdb"
    as_of = datetime(2026, 11, 1)
    assert volume.read_sizes(warehouse) == {}
    volume.record_sizes(warehouse, {"seg_a": 5, "seg_b": 9}, as_of)
    volume.record_sizes(warehouse, {"seg_a": 6}, as_of)
    assert volume.baseline_path(warehouse) == tmp_path / "warehouse.segment_sizes.json"
    assert volume.read_sizes(warehouse) == {"seg_a": 6, "seg_b": 9}
    assert [p.name for p in tmp_path.iterdir()] == ["warehouse.segment_sizes.json"]
