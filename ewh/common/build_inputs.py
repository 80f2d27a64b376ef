"""Whether a dbt build would read exactly what the last successful one read: then it can be
skipped whole (`ewh build`, docs/performance.md).

A build's result is a function of what it reads: the raw layer (every table of the `raw`
schema: the sources, and what the reconciliation tests read), the project's code (models,
macros, seeds, tests, selectors, dbt_project.yml, the profile), the command line and dbt's
DBT_* settings (selection, vars: with `as_of` pinned, every time window is fixed) and which
tables exist (a dropped model is rebuilt). The inputs key is a digest of all of them; per raw
table, the row count and an order-free sum of row hashes, so an append, a deletion (erasure)
or an update in place (re-keying) changes it.

The key of the last successful build is kept in the warehouse. Every dbt command that runs
hooks (run, build, seed, snapshot, test, retry) first replaces it with its own invocation id
(`forget_build_inputs`, an on-run-start hook), and so does the history backfill's rewrite
(`forget_key`). `ewh build` records its key after dbt succeeded only if the row still holds its
own invocation's id: a `dbt run` of one model, a build with other vars, a failed build or any
dbt run that started meanwhile leaves no key, so the next build runs. A build can be skipped
only when
- the target is DuckDB (on Spark the raw layer is a Parquet lake; not fingerprinted here),
- `as_of` is pinned (unset, it is the build's start time and every window moves),
- it is not a full refresh (asked for explicitly; it still records its key, as its tables equal
  an incremental build's), and
- it reads no dbt artifacts (--state, --defer, result: or source_status: selectors).
"""
from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import duckdb
import yaml

from ewh.common.duckdb_tables import has_table
from ewh.common.sql_text import quote_ident

# the rebuild_on_change macro's table (macros/incremental/rebuild_on_change.sql), one row per
# entry: the models' fingerprints and this whole-build key
STATE_TABLE = ("intermediate", "incremental_fingerprints")
BUILD_ENTRY = "__whole_build__"
# the project's folders and files that decide what dbt builds
CODE_PATHS = ("models", "macros", "seeds", "tests", "snapshots", "dbt_project.yml",
              "selectors.yml")
# the row of a dbt invocation that started after the last recorded key (forget_build_inputs)
PENDING = "pending:"
# DBT_* variables that change how dbt reports or where it keeps its files, not what it builds;
# every other one (DBT_EMPTY, DBT_SAMPLE, DBT_RESOURCE_TYPES...) is part of the key
_COSMETIC_ENV = ("DBT_LOG", "DBT_USE_COLORS", "DBT_PRINTER_WIDTH", "DBT_QUIET", "DBT_PRINT",
                 "DBT_DEBUG", "DBT_SEND_ANONYMOUS_USAGE_STATS", "DBT_PROFILES_DIR",
                 "DBT_PROJECT_DIR", "DBT_TARGET_PATH", "DBT_PARTIAL_PARSE", "DBT_STATIC_PARSER",
                 "DBT_VERSION_CHECK", "DBT_INVOCATION_ENV", "DBT_CACHE_SELECTED_ONLY")
# options and selector methods that read dbt artifacts (run results, state), not in the key
_ARTIFACT_OPTIONS = ("--state", "--defer", "--favor-state", "--defer-state")
_ARTIFACT_METHODS = ("state:", "result:", "source_status:")
# command-line options whose value is where dbt writes or reads its own files, not what it builds
_PATH_OPTIONS = {"--project-dir", "--profiles-dir", "--target-path", "--log-path"}


@dataclass(frozen=True, slots=True)
class BuildInputs:
    """What one build reads, or why it cannot be skipped. `parts` is None when no key may be
    recorded either (the result is not a function of what is fingerprinted)."""

    parts: dict[str, object] | None
    skippable: bool
    reason: str
    tables: dict[str, list[str]] | None = None  # the warehouse's tables when it was read

    def key(self, warehouse: Path | None = None) -> str | None:
        """The inputs key with the warehouse's tables as they were read (to compare before a
        build), or as they are now in `warehouse` (to record after it: the build creates its
        models). The raw layer is the one fingerprinted before the build: a load in between
        makes the next key differ, so the next build runs."""
        if self.parts is None:
            return None
        if warehouse is None:
            tables = self.tables or {}
        elif warehouse.exists():
            with duckdb.connect(str(warehouse), read_only=True) as con:
                tables = _table_columns(con)
        else:
            return None
        state = ".".join(STATE_TABLE)
        parts = {**self.parts, "tables": {k: v for k, v in tables.items() if k != state}}
        return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()


def build_inputs(warehouse: Path, dbt_args: Sequence[str], project_dir: Path,
                 profiles_dir: Path, target: str = "duckdb",
                 environ: Mapping[str, str] | None = None) -> BuildInputs:
    args = list(dbt_args)
    env = {k: v for k, v in (environ or {}).items() if k.startswith("DBT_")
           and not k.startswith(_COSMETIC_ENV)}
    if target != "duckdb":
        return BuildInputs(None, False, f"the {target} target is not fingerprinted")
    as_of = _vars(args).get("as_of")
    if as_of is None or str(as_of).strip() == "":
        return BuildInputs(None, False, "as_of is not pinned: every window moves with the clock")
    if any(a.split("=", 1)[0] in _ARTIFACT_OPTIONS or any(m in a for m in _ARTIFACT_METHODS)
           for a in args) or {"DBT_STATE", "DBT_DEFER", "DBT_FAVOR_STATE"} & env.keys():
        return BuildInputs(None, False, "it reads dbt artifacts (state, results)")
    if not warehouse.exists():
        return BuildInputs(None, False, "the warehouse does not exist yet")
    with duckdb.connect(str(warehouse), read_only=True) as con:
        tables = _table_columns(con)
        raw = _raw_digest(con, tables)
    # like --full-refresh, DBT_FULL_REFRESH is not in the key: a full refresh's tables equal
    # an incremental build's
    key_env = {k: v for k, v in env.items() if k != "DBT_FULL_REFRESH"}
    parts = {"args": _build_args(args), "env": key_env, "code": _code_digest(project_dir),
             "profile": _file_digest(profiles_dir / "profiles.yml"), "raw": raw}
    if _full_refresh(args, env):
        return BuildInputs(parts, False, "a full refresh always builds", tables)
    return BuildInputs(parts, True, "", tables)


def _full_refresh(args: list[str], env: Mapping[str, str]) -> bool:
    flag = env.get("DBT_FULL_REFRESH", "").strip().lower()
    return "--full-refresh" in args or "-f" in args or flag in ("1", "true", "yes", "y", "t")


def recorded_key(warehouse: Path) -> str | None:
    """The key of the last successful `ewh build`, if no dbt invocation started since."""
    if not warehouse.exists():
        return None
    with duckdb.connect(str(warehouse), read_only=True) as con:
        if not has_table(con, *STATE_TABLE):
            return None
        row = con.execute(f"select fingerprint from {_state_relation()} where model_name = ?",
                          [BUILD_ENTRY]).fetchone()
    return row[0] if row and not row[0].startswith(PENDING) else None


def record_key(warehouse: Path, key: str, invocation_id: str) -> bool:
    """Record `key` for the dbt invocation `invocation_id` that just succeeded, only if no
    other invocation started since (its hook would have replaced the pending row)."""
    with duckdb.connect(str(warehouse)) as con:
        if not has_table(con, *STATE_TABLE):
            return False
        recorded = con.execute(
            f"update {_state_relation()} set fingerprint = ? "
            "where model_name = ? and fingerprint = ? returning model_name",
            [key, BUILD_ENTRY, PENDING + invocation_id]).fetchall()
    return len(recorded) == 1


def forget_key(con: duckdb.DuckDBPyConnection) -> None:
    """For a writer of dbt's tables other than dbt (in its transaction): the next build runs."""
    if has_table(con, *STATE_TABLE):
        con.execute(f"delete from {_state_relation()} where model_name = ?", [BUILD_ENTRY])


def _state_relation() -> str:
    return ".".join(quote_ident(part) for part in STATE_TABLE)


def option_value(args: Sequence[str], *names: str) -> str | None:
    """The value of a command-line option as dbt's parser (click) reads it: `--name value`,
    `--name=value`, and for a short option also `-nvalue`; the last one wins."""
    value = None
    for i, arg in enumerate(args):
        for name in names:
            if arg == name and i + 1 < len(args):
                value = args[i + 1]
            elif arg.startswith(name + "="):
                value = arg.split("=", 1)[1]
            elif not name.startswith("--") and arg.startswith(name) and len(arg) > len(name):
                value = arg[len(name):]
    return value


def _vars(args: list[str]) -> dict:
    text = option_value(args, "--vars")
    loaded = yaml.safe_load(text) if text is not None else None
    return loaded if isinstance(loaded, dict) else {}


def _build_args(args: list[str]) -> list[str]:
    """The command line without where dbt keeps its files and without --full-refresh; the vars
    once, as data, so that another spelling of the same values gives the same key."""
    kept: list[str] = []
    skip_value = False
    for arg in args:
        if skip_value:
            skip_value = False
        elif arg in _PATH_OPTIONS or arg == "--vars":
            skip_value = True
        elif arg not in ("--full-refresh", "-f") and arg.split("=", 1)[0] not in (
                *_PATH_OPTIONS, "--vars"):
            kept.append(arg)
    return [*kept, "--vars", json.dumps(_vars(args), sort_keys=True, default=str)]


def _table_columns(con: duckdb.DuckDBPyConnection) -> dict[str, list[str]]:
    columns: dict[str, list[str]] = {}
    for schema, table, column, data_type in con.execute(
            "select table_schema, table_name, column_name, data_type "
            "from information_schema.columns order by table_schema, table_name, "
            "ordinal_position").fetchall():
        columns.setdefault(f"{schema}.{table}", []).append(f"{column} {data_type}")
    return columns


def _raw_digest(con: duckdb.DuckDBPyConnection,
                tables: dict[str, list[str]]) -> dict[str, list[str]]:
    """Per raw table: its row count and order-free sum of row hashes (its columns are in the
    tables part of the key)."""
    raw: dict[str, list[str]] = {}
    for name in sorted(t for t in tables if t.startswith("raw.")):
        table = name.split(".", 1)[1]
        rows, hashes = con.execute(
            f"select count(*), coalesce(sum(hash(t)), 0) "
            f"from raw.{quote_ident(table)} as t").fetchone()
        raw[name] = [str(rows), str(hashes)]
    return raw


def _code_digest(project_dir: Path) -> str:
    digest = hashlib.sha256()
    for name in CODE_PATHS:
        root = project_dir / name
        files = sorted(p for p in root.rglob("*") if p.is_file()) if root.is_dir() else (
            [root] if root.is_file() else [])
        for path in files:
            digest.update(str(path.relative_to(project_dir)).encode() + b"\0")
            digest.update(path.read_bytes() + b"\0")
    return digest.hexdigest()


def _file_digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else ""
