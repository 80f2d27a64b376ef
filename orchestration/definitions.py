"""The Dagster code location (`dagster dev` in the repository root finds it through
`[tool.dagster]` in pyproject.toml).

Importing this module runs nothing: the definitions are built when Dagster loads them.
Each area of `orchestration/defs/` contributes its own; the dbt project is parsed then,
and only if its manifest is stale.
"""

import dagster as dg
from dagster.components import load_defs

import orchestration.defs
from orchestration.resources import shared_resources


@dg.definitions
def defs() -> dg.Definitions:
    return dg.Definitions.merge(
        load_defs(orchestration.defs),
        dg.Definitions(
            resources=shared_resources(),
            # One DuckDB file has one writer: run every step of a run in one process, in order.
            executor=dg.in_process_executor,
        ),
    )
