"""Resources every area shares: the warehouse settings and the dbt CLI.

Dagster gets the settings as a ConfigurableResource whose fields come from `dg.EnvVar`
(the same `EWH_*` variables `ewh.common.settings` reads), so a run shows them in its config
and nothing writes to the environment. A variable that is not set keeps its default.
"""

from __future__ import annotations

import os

import dagster as dg
from dagster_dbt import DbtCliResource

from ewh.common.settings import ENV_PREFIX, Settings
from orchestration.project import dbt_executable, dbt_project


class WarehouseSettings(dg.ConfigurableResource):
    """Where the warehouse and its neighbours live, and the instant windows are pinned to."""

    warehouse: str
    landing_dir: str
    serving: str
    exports_dir: str
    report: str
    ops_db: str
    models_dir: str
    spark_warehouse: str | None = None
    dbt_target: str | None = None
    lake_dir: str | None = None
    as_of: str | None = None
    timestamp_floor: str | None = None

    def get(self) -> Settings:
        """The same typed settings the CLI and the collector use."""
        given = {name: value for name, value in self.model_dump().items() if value is not None}
        return Settings(**given)


def _from_env(field: str) -> dg.EnvVar | str | None:
    """`dg.EnvVar("EWH_<FIELD>")` when that variable is set, else the field's default."""
    variable = ENV_PREFIX + field.upper()
    if os.environ.get(variable):
        return dg.EnvVar(variable)
    default = Settings.model_fields[field].default
    return None if default is None else str(default)


def warehouse_settings() -> WarehouseSettings:
    fields = WarehouseSettings.model_fields
    return WarehouseSettings(**{name: _from_env(name) for name in fields})


def shared_resources() -> dict[str, object]:
    return {
        "settings": warehouse_settings(),
        "dbt": DbtCliResource(project_dir=dbt_project, dbt_executable=dbt_executable()),
    }
