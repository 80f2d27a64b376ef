"""dbt's saved parse, shared by the tests' dbt calls (tests/dbt_parse_cache.py), never stands in
for the call's own vars or files: dbt checks a copied parse itself and parses again what does
not fit. Real dbt on a private copy of the project (so a model can be changed) with a private
cache folder.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import dbt_parse_cache
import pytest
from dbt_runner import PROJECT_DIR, dbt_command, warehouse_in

PROJECT_FILES = ("dbt_project.yml", "profiles.yml", "models", "macros", "seeds", "analyses")
VARS_FIRST = json.dumps({"as_of": "2026-01-02 03:04:05"})
VARS_OTHER = json.dumps({"as_of": "2027-05-06 07:08:09"})
CHANGED_MODEL = Path("models/intermediate/int_user_consent.sql")
MARKER = "-- a change the cached parse has not seen"


def _copy_project(folder: Path) -> Path:
    for name in PROJECT_FILES:
        source = PROJECT_DIR / name
        if source.is_dir():
            shutil.copytree(source, folder / name)
        else:
            folder.mkdir(parents=True, exist_ok=True)
            shutil.copy(source, folder / name)
    shutil.copytree(PROJECT_DIR / "tests" / "dbt", folder / "tests" / "dbt")
    return folder


def _dbt(setup: dict[str, Any], work: str, *args: str) -> str:
    """dbt on the copy; its log (dbt.log) and printed output."""
    result = dbt_command(setup["warehouse"], setup["root"] / work, *args,
                         project_dir=setup["project"])  # fmt: skip
    assert result.returncode == 0, result.stdout[-4000:]
    return (setup["root"] / work / "logs" / "dbt.log").read_text() + result.stdout


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """A first parse of the copy at VARS_FIRST, kept in the private cache."""
    root = tmp_path_factory.mktemp("parse_cache")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(dbt_parse_cache.CACHE_ENV, str(root / "cache"))
        setup = {"root": root, "project": _copy_project(root / "project"),
                 "warehouse": warehouse_in(root / "warehouse")}  # fmt: skip
        log = _dbt(setup, "first", "parse", "--vars", VARS_FIRST)
        assert "Unable to do partial parsing because saved manifest not found" in log
        assert len(list((root / "cache").iterdir())) == 1
        yield setup


def test_a_model_changed_after_the_cached_parse_is_parsed_again(setup: dict[str, Any]) -> None:
    model = setup["project"] / CHANGED_MODEL
    model.write_text(model.read_text() + "\n" + MARKER + "\n")
    log = _dbt(setup, "changed", "parse", "--vars", VARS_FIRST)
    # the cached parse was used (no full parse) and the changed file parsed again
    assert "Unable to do partial parsing" not in log
    assert "Partial parsing enabled: 0 files deleted, 0 files added, 1 files changed" in log
    manifest = json.loads((setup["root"] / "changed" / "target" / "manifest.json").read_text())
    node = manifest["nodes"]["model.engagement_warehouse.int_user_consent"]
    assert node["raw_code"].rstrip().endswith(MARKER)


def test_a_cached_parse_for_other_vars_is_rejected(setup: dict[str, Any]) -> None:
    cache = setup["root"] / "cache"
    (first,) = cache.iterdir()
    # a wrong entry: the parse made at VARS_FIRST, filed as VARS_OTHER's
    other = dbt_parse_cache.parse_key(setup["project"], "warehouse.duckdb",
                                      ("--vars", VARS_OTHER))  # fmt: skip
    shutil.copy(first, cache / other)
    out = _dbt(setup, "other", "compile", "--vars", VARS_OTHER,
               "--inline", "select '{{ var(\"as_of\") }}' as probe")  # fmt: skip
    assert "Unable to do partial parsing because config vars" in out
    assert "select '2027-05-06 07:08:09' as probe" in out
