"""The child process that builds the point-in-time training set with dbt (snapshots.py).

`python -m ewh.predictions.dbt_snapshots REQUEST.json`: parse the dbt project once, then in
the scratch warehouse run `dbt seed` and `dbt run --select +int_user_features` at every
requested date, oldest first, with the parsed manifest (dbtRunner(manifest=...): a new
as_of is a new var, which would otherwise make dbt re-parse the whole project), copying each
date's rows into training.feature_snapshots; then run at as_of and write training.labels.
Writes result.json beside the request. A child process, because dbt in-process keeps global
state (its logging, the DuckDB handle) that a Dagster step or the CLI should not inherit.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any

import duckdb

from ewh.common.settings import PROJECT_ROOT
from ewh.predictions.labels import labels_sql
from ewh.predictions.snapshots import LABELS_TABLE, RESULT_FILE, SNAPSHOTS_TABLE
from ewh.predictions.specs import FEATURES_MODEL, FEATURES_TABLE, MODELS


def _invoke(runner: Any, args: list[str], common: list[str]) -> None:
    outcome = runner.invoke([*args, *common])
    if not outcome.success:
        failed = [f"{r.node.name}: {r.message}"
                  for r in getattr(outcome.result, "results", None) or []
                  if str(r.status) in ("error", "fail")]
        raise SystemExit(f"dbt {' '.join(args)} failed: "
                         f"{'; '.join(failed) or outcome.exception}")


def _feature_docs(manifest: Any) -> tuple[str, dict[str, str]]:
    for node in manifest.nodes.values():
        if node.resource_type == "model" and node.name == FEATURES_MODEL:
            docs = {name: " ".join((column.description or "").split())
                    for name, column in node.columns.items()}
            return node.raw_code, docs
    raise SystemExit(f"{FEATURES_MODEL} is not in the dbt project")


def build(request: dict[str, Any]) -> dict[str, Any]:
    import os

    from dbt.cli.main import dbtRunner

    work_dir, scratch = Path(request["work_dir"]), Path(request["scratch"])
    os.environ["EWH_WAREHOUSE"] = str(scratch)
    os.environ["EWH_DBT_TARGET"] = "duckdb"
    common = ["--project-dir", str(PROJECT_ROOT), "--profiles-dir", str(PROJECT_ROOT),
              "--target-path", str(work_dir / "target"), "--log-path", str(work_dir / "logs")]
    parsed = dbtRunner().invoke(["parse", *common])
    if not parsed.success:
        raise SystemExit(f"dbt parse failed: {parsed.exception}")
    runner = dbtRunner(manifest=parsed.result)
    _invoke(runner, ["seed"], common)
    seconds: dict[str, float] = {}

    def run_at(at: str) -> None:
        # A full build at each date, one model at a time: its memory is bounded like any full
        # build's (within EWH_DUCKDB_MEMORY_LIMIT), and it runs beside the refreshes. Week-apart
        # incremental runs were faster but, at 250k users, one ran out of memory in
        # int_user_consent's changed-key filter under the default 3 GB limit. Incremental
        # equals full refresh (tested), so the rows are the same either way.
        _invoke(runner, ["run", "--threads", "1", "--full-refresh", "--select",
                         f"+{FEATURES_MODEL}", "--vars", json.dumps({"as_of": at})], common)

    for date in request["dates"]:
        started = time.perf_counter()
        run_at(date)
        # dbt-duckdb keeps the file open in this process: a connection with the same
        # configuration shares its database
        with duckdb.connect(str(scratch)) as con:
            con.execute("create schema if not exists training")
            con.execute(f"create table if not exists {SNAPSHOTS_TABLE} as "
                        f"select * from {FEATURES_TABLE} where false")
            con.execute(f"insert into {SNAPSHOTS_TABLE} select * from {FEATURES_TABLE}")
        seconds[date] = round(time.perf_counter() - started, 2)
    started = time.perf_counter()
    run_at(request["as_of"])  # the outcomes: everything up to as_of
    version, rows = None, 0
    with duckdb.connect(str(scratch)) as con:
        if request["dates"]:
            con.execute(labels_sql([MODELS[name] for name in request["models"]]))
            versions = [r[0] for r in con.execute(
                f"select distinct feature_version from {SNAPSHOTS_TABLE}").fetchall()]
            if len(versions) > 1:
                raise SystemExit(f"the snapshots hold several feature versions: {versions}")
            version = versions[0] if versions else None
            rows = int(con.execute(f"select count(*) from {SNAPSHOTS_TABLE}").fetchone()[0])
            labelled = int(con.execute(f"select count(*) from {LABELS_TABLE}").fetchone()[0])
            if labelled != rows:
                raise SystemExit(f"{labelled} labels for {rows} snapshot rows")
    seconds["labels at " + request["as_of"]] = round(time.perf_counter() - started, 2)
    features_sql, docs = _feature_docs(parsed.result)
    return {"feature_version": version, "features_sql": features_sql, "feature_docs": docs,
            "rows": rows, "seconds": seconds}


def main(argv: list[str]) -> int:
    request_file = Path(argv[0])
    result = build(json.loads(request_file.read_text()))
    (request_file.parent / RESULT_FILE).write_text(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
