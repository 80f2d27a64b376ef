"""Every dbt model, seed and test as Dagster assets and asset checks."""

import json
import os
from collections.abc import Iterator
from typing import Any

import dagster as dg
import duckdb
from dagster_dbt import DbtCliResource, dbt_assets

from ewh.paths import warehouse_path
from ewh.sql_text import quote_ident
from orchestration.pools import WAREHOUSE_POOL
from orchestration.project import SEGMENTS, dbt_project
from orchestration.translator import WarehouseTranslator, asset_key_for

SAMPLE_MEMBERS = 5
SEGMENT_KEYS = {asset_key_for("segments", s.name) for s in SEGMENTS}


class DbtBuildConfig(dg.Config):
    """Run-time knobs of the build. `as_of` pins every time window (default: build time)."""

    as_of: str | None = None
    full_refresh: bool = False


def build_args(config: DbtBuildConfig) -> list[str]:
    # Unit tests check the SQL, not the data: CI runs them (tests/integration), and
    # skipping them here saves every scheduled refresh ~30 s of thread time.
    args = ["build", "--exclude-resource-type", "unit_test"]
    as_of = config.as_of or os.environ.get("EWH_AS_OF")
    if as_of:
        args += ["--vars", json.dumps({"as_of": as_of})]
    if config.full_refresh:
        args.append("--full-refresh")
    return args


def _segment_of(event: Any) -> dg.AssetKey | None:
    key = getattr(event, "asset_key", None)
    if isinstance(event, dg.Output):
        key = dg.AssetKey(event.output_name.split("__"))
    return key if key in SEGMENT_KEYS else None


def _segment_metadata(con: duckdb.DuckDBPyConnection, key: dg.AssetKey) -> dict[str, Any]:
    relation = f"{quote_ident(key.path[0])}.{quote_ident(key.path[1])}"
    rows = con.execute(f"select count(*) from {relation}").fetchone()[0]
    sample = con.execute(
        f"select * from {relation} order by user_key limit {SAMPLE_MEMBERS}").fetchall()
    columns = [d[0] for d in con.description]
    table = "| " + " | ".join(columns) + " |\n|" + "---|" * len(columns) + "\n" + "".join(
        "| " + " | ".join(str(v) for v in row) + " |\n" for row in sample)
    return {"dagster/row_count": dg.MetadataValue.int(int(rows)),
            "sample_members": dg.MetadataValue.md(table)}


def with_segment_sizes(events: Iterator[Any]) -> Iterator[Any]:
    """Pass dbt events through; hold back the segment ones until dbt has exited.

    Sizes and sample members can only be read once dbt (the writer) has released the
    DuckDB file, so segment outputs and their test results are released at the end,
    in their original order, with the size attached (the UI plots it over time).
    """
    held: list[Any] = []
    for event in events:
        if _segment_of(event) is not None:
            held.append(event)
        else:
            yield event
    if not held:
        return
    with duckdb.connect(str(warehouse_path()), read_only=True) as con:
        for event in held:
            if isinstance(event, dg.Output):
                event = event.with_metadata({**event.metadata,
                                             **_segment_metadata(con, _segment_of(event))})
            yield event


@dbt_assets(
    manifest=dbt_project.manifest_path,
    project=dbt_project,
    dagster_dbt_translator=WarehouseTranslator(),
    name="warehouse_dbt_models",
    pool=WAREHOUSE_POOL,
)
def warehouse_dbt_models(
    context: dg.AssetExecutionContext, dbt: DbtCliResource, config: DbtBuildConfig
):
    yield from with_segment_sizes(dbt.cli(build_args(config), context=context).stream())
