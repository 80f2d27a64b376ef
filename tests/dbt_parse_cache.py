"""dbt's saved parse (partial_parse.msgpack), shared by every dbt call of a test session.

A dbt call in a target folder without a saved parse for the same --vars and profile parses the
whole project (~8 s of CPU). Each test has its own target folder, so without this every call
with new vars or in a new folder is a full parse. Before a call, the parse saved by an earlier
call with the same --vars and warehouse file name is copied into the target folder; after it,
the folder's parse is kept for later calls.

Safe because dbt checks a saved parse itself before using it (dbt/parser/manifest.py,
is_partial_parsable): the --vars, the profile (path, database, settings), dbt_project.yml and
the env vars it reads, and every project file's checksum (changed files are parsed again). An
entry that does not fit costs a full parse, never a wrong manifest
(tests/integration/test_dbt_parse_cache.py).

The cache folder is EWH_TEST_DBT_PARSE_CACHE (tests/conftest.py: one per session, shared with
the pytest-xdist workers); unset, nothing is cached.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path

CACHE_ENV = "EWH_TEST_DBT_PARSE_CACHE"
SAVED_PARSE = "partial_parse.msgpack"
# beside the saved parse: the key of the call that left it there
SAVED_KEY = "partial_parse.key"


def parse_key(project_dir: Path, warehouse_name: str, args: tuple[str, ...]) -> str:
    """What decides whether two calls can share a parse: the project, the --vars (dbt's vars
    hash) and the warehouse file's name (the profile's path, and the database dbt-duckdb names
    after it)."""
    variables = [args[i + 1] for i, arg in enumerate(args[:-1]) if arg == "--vars"]
    text = json.dumps([str(project_dir), warehouse_name, variables])
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def _cache_dir() -> Path | None:
    folder = os.environ.get(CACHE_ENV)
    return Path(folder) if folder else None


def _copy_atomically(source: Path, destination: Path) -> None:
    """Readers see the old file or the whole new one, never a part (two workers may write)."""
    descriptor, partial = tempfile.mkstemp(dir=destination.parent, prefix=".partial-")
    os.close(descriptor)
    try:
        shutil.copyfile(source, partial)
        os.replace(partial, destination)
    except BaseException:
        Path(partial).unlink(missing_ok=True)
        raise


def restore(target: Path, key: str) -> None:
    """Before a call: the cached parse for `key`, unless target/ already holds the one for it."""
    cache = _cache_dir()
    if cache is None or not (cache / key).exists():
        return
    marker = target / SAVED_KEY
    if (target / SAVED_PARSE).exists() and marker.exists() and marker.read_text() == key:
        return
    target.mkdir(parents=True, exist_ok=True)
    _copy_atomically(cache / key, target / SAVED_PARSE)
    marker.write_text(key)


def save(target: Path, key: str, succeeded: bool) -> None:
    """After a call: mark target/'s parse as `key`'s; keep it for later calls if none is kept."""
    if not (target / SAVED_PARSE).exists():
        return
    (target / SAVED_KEY).write_text(key)
    cache = _cache_dir()
    if cache is None or not succeeded or (cache / key).exists():
        return
    cache.mkdir(parents=True, exist_ok=True)
    _copy_atomically(target / SAVED_PARSE, cache / key)
