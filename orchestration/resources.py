"""Resources shared by every asset: the dbt CLI, bound to the project and warehouse."""

from __future__ import annotations

import os

from dagster_dbt import DbtCliResource

from ewh.paths import warehouse_path
from orchestration.project import dbt_executable, dbt_project


def build_resources() -> dict[str, object]:
    # dbt subprocesses inherit the environment: pin the warehouse to an absolute path
    # so dbt, the loader and the exports agree whatever the working directory.
    os.environ["EWH_WAREHOUSE"] = str(warehouse_path())
    return {"dbt": DbtCliResource(project_dir=dbt_project, dbt_executable=dbt_executable())}
