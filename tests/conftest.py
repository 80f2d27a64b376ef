"""Shared by every test folder: this folder is on sys.path, so `import dbt_runner` works."""

from __future__ import annotations

import pytest


def pytest_configure(config: pytest.Config) -> None:
    # `make test` runs the tests in parallel workers (pytest-xdist) that share the project's
    # target/ folder. The manifest is parsed once here, before any worker starts, so no two
    # workers parse it at once (each would otherwise find it missing or stale and rewrite it).
    if hasattr(config, "workerinput"):
        return
    from orchestration.project import dbt_project

    dbt_project.prepare_if_dev()
