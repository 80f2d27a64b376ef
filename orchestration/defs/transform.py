"""Every dbt model, seed and test as Dagster assets and asset checks."""


import json
import os

import dagster as dg
from dagster_dbt import DbtCliResource, dbt_assets

from orchestration.project import dbt_project
from orchestration.translator import WarehouseTranslator


class DbtBuildConfig(dg.Config):
    """Run-time knobs of the build. `as_of` pins every time window (default: build time)."""

    as_of: str | None = None
    full_refresh: bool = False


def build_args(config: DbtBuildConfig) -> list[str]:
    args = ["build"]
    as_of = config.as_of or os.environ.get("EWH_AS_OF")
    if as_of:
        args += ["--vars", json.dumps({"as_of": as_of})]
    if config.full_refresh:
        args.append("--full-refresh")
    return args


@dbt_assets(
    manifest=dbt_project.manifest_path,
    project=dbt_project,
    dagster_dbt_translator=WarehouseTranslator(),
    name="warehouse_dbt_models",
)
def warehouse_dbt_models(
    context: dg.AssetExecutionContext, dbt: DbtCliResource, config: DbtBuildConfig
):
    yield from dbt.cli(build_args(config), context=context).stream()
