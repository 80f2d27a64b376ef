"""Fixtures shared by the integration tests."""

from __future__ import annotations

import pytest
from history_warehouse import Backfilled, build


@pytest.fixture(scope="session")
def backfilled(tmp_path_factory: pytest.TempPathFactory) -> Backfilled:
    """A built warehouse whose segment history was backfilled (history_warehouse.py)."""
    return build(tmp_path_factory.mktemp("backfilled"))
