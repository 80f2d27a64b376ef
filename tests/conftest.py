"""Shared by every test folder: this folder is on sys.path, so `import dbt_runner` works.

The privacy keys are set explicitly for the whole session (docs/privacy.md): one HMAC key and
a key store in a temporary folder, inherited by every subprocess (dbt, the collector, the
CLI, the pytest-xdist workers), so no test creates a key in the repository's data/ folder.
Likewise the Great Expectations project: each process gets a private copy of the committed
one (EWH_GX_PROJECT_DIR), so no test writes validation results or Data Docs into the
repository, and an erasure in one test never scrubs or scans another test's results.
"""

from __future__ import annotations

import importlib.machinery
import os
import shutil
import tempfile
from pathlib import Path

import dbt_parse_cache
import pytest

import __main__

# A pytest-xdist worker's __main__ has neither a spec nor a file, which pyspark (installed for
# the Spark target) takes for its own doctest run: importing pyspark.sql.connect, as Great
# Expectations does, then calls sys.exit(0) (pyspark.sql.connect.utils.check_dependencies).
# A spec named __main__ says otherwise and changes nothing else (multiprocessing's spawn skips
# re-importing a main module of that name).
if getattr(__main__, "__spec__", None) is None and not hasattr(__main__, "__file__"):
    __main__.__spec__ = importlib.machinery.ModuleSpec("__main__", None)

os.environ.setdefault("EWH_PSEUDONYM_KEY", "test-only-pseudonym-key-0123456789abcdef")
os.environ.setdefault("EWH_KEY_STORE", tempfile.mkdtemp(prefix="ewh-keystore-"))
# One per process (a pytest-xdist worker inherits the first process's variables: it makes its
# own copy too), unless the caller chose a GX project.
_AUTO_GX = "EWH_TEST_GX_COPY"
if os.environ.get("EWH_GX_PROJECT_DIR", "") in ("", os.environ.get(_AUTO_GX)):
    # only what is committed (ewh.quality.project writes the rest; importing it here would
    # import Great Expectations into every process)
    _gx_copy = Path(tempfile.mkdtemp(prefix="ewh-gx-"))
    shutil.copytree(Path(__file__).resolve().parents[1] / "expectations" / "gx", _gx_copy / "gx",
                    ignore=shutil.ignore_patterns("uncommitted", "expectations",
                                                  "validation_definitions", "checkpoints"))
    os.environ["EWH_GX_PROJECT_DIR"] = os.environ[_AUTO_GX] = str(_gx_copy)
# The analyst report the Dagster graph writes (default data/report.html, in the repository).
os.environ.setdefault("EWH_REPORT",
                      str(Path(tempfile.mkdtemp(prefix="ewh-report-")) / "report.html"))

# dbt's saved parses, shared by the whole session (dbt_parse_cache.py): made by the first
# process (the workers inherit it) and removed by that process at the end.
_OWN_PARSE_CACHE = dbt_parse_cache.CACHE_ENV not in os.environ
if _OWN_PARSE_CACHE:
    os.environ[dbt_parse_cache.CACHE_ENV] = tempfile.mkdtemp(prefix="ewh-dbt-parse-")


def pytest_configure(config: pytest.Config) -> None:
    # `make test` runs the tests in parallel workers (pytest-xdist) that share the project's
    # target/ folder. The manifest is parsed once here, before any worker starts, so no two
    # workers parse it at once (each would otherwise find it missing or stale and rewrite it).
    if hasattr(config, "workerinput"):
        return
    from orchestration.project import dbt_project

    dbt_project.prepare_if_dev()


def pytest_unconfigure(config: pytest.Config) -> None:
    if _OWN_PARSE_CACHE:
        shutil.rmtree(os.environ[dbt_parse_cache.CACHE_ENV], ignore_errors=True)


# The longest files, started first (longest processing time first): pytest-xdist
# (`--dist loadfile`) hands files to the workers in collection order (pyproject.toml's
# `--no-loadscope-reorder`: xdist's default would order them by number of tests, which started
# these, with few tests each, late), so a long file collected last would run alone at the end.
# The two Spark files come first, one per worker. Seconds: a full `make test` run on 2 shared cores.
LONGEST_FIRST = (
    "tests/integration/test_spark_incremental.py",  # ~500 s
    "tests/integration/test_spark_parity.py",  # ~280 s
    "tests/e2e/test_demo.py",  # ~330 s
    "tests/e2e/test_orchestration_runs.py",  # ~280 s
    "tests/e2e/test_privacy.py",  # ~210 s
    "tests/integration/test_realtime.py",  # ~200 s
    "tests/e2e/test_predictions_flow.py",  # ~160 s
    "tests/integration/test_membership_history_as_of_back.py",  # ~160 s
    "tests/integration/test_incremental_equivalence.py",  # ~150 s
    "tests/integration/test_build_skip.py",  # ~130 s
    "tests/integration/test_predictions.py",  # ~110 s
    "tests/integration/test_incremental_rekey_scenarios.py",  # ~110 s
    "tests/integration/test_reference_model.py",  # ~100 s
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    def rank(item: pytest.Item) -> int:
        path = item.nodeid.split("::")[0]
        return LONGEST_FIRST.index(path) if path in LONGEST_FIRST else len(LONGEST_FIRST)

    items.sort(key=rank)  # stable: the rest keep their order
