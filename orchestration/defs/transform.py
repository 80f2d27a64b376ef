"""Every dbt model, seed and test as Dagster assets and asset checks."""

import json
from collections.abc import Iterator
from typing import Any

import dagster as dg
import duckdb
from dagster_dbt import DbtCliResource, dbt_assets

from ewh.common.clock import dbt_timestamp
from ewh.common.duckdb_tables import has_table
from ewh.common.refresh_scope import BUILT_MARKER, UNPUBLISHED_TESTS
from ewh.common.sql_text import quote_ident
from ewh.privacy.erasure import IDENTITY_COLUMN
from ewh.privacy.keys import PrivacyKeys
from ewh.spark.tables import tables_for_reads
from orchestration.pools import WAREHOUSE_POOL
from orchestration.project import WarehouseProject, warehouse_project
from orchestration.resources import WarehouseSettings
from orchestration.translator import WarehouseTranslator, asset_key_for

SAMPLE_MEMBERS = 5


class DbtBuildConfig(dg.Config):
    """Run-time knobs of the build. `as_of` pins every time window (default: build time).
    The build is two steps (warehouse_dbt_models, warehouse_dbt_scored_models): give both
    the same values, or pin as_of for the whole run with EWH_AS_OF. `all_tests`: run every
    data test even in an incremental build (default: only on a full refresh or a first build;
    ewh/common/refresh_scope.py)."""

    as_of: str | None = None
    full_refresh: bool = False
    all_tests: bool = False


def build_args(config: DbtBuildConfig, settings: WarehouseSettings | None = None) -> list[str]:
    # Unit tests check the SQL, not the data: CI runs them (tests/integration), and
    # skipping them here saves every scheduled refresh ~30 s of thread time.
    # buildable: a test runs in the step that builds the last of the models it reads (the
    # build is two steps; eager would run a test between two models before the second is built)
    args = ["build", "--exclude-resource-type", "unit_test", "--indirect-selection", "buildable"]
    pinned = settings.get().as_of if settings is not None else None
    as_of = config.as_of or (dbt_timestamp(pinned) if pinned is not None else None)
    if as_of:
        args += ["--vars", json.dumps({"as_of": as_of})]
    if config.full_refresh:
        args.append("--full-refresh")
    elif not config.all_tests and settings is not None and _built_before(settings):
        # one argument (dbt reads spaces as union): after it Dagster adds its own --exclude,
        # which dbt unions with this one; separate arguments are refused as extra arguments
        args += ["--exclude", " ".join(UNPUBLISHED_TESTS)]
    return args


def _built_before(settings: WarehouseSettings) -> bool:
    """Whether the target already holds built marts (the built tables, on either engine)."""
    tables = tables_for_reads(settings.get())
    if not tables.exists():
        return False
    with duckdb.connect(str(tables), read_only=True) as con:
        return has_table(con, *BUILT_MARKER)


def _segment_metadata(con: duckdb.DuckDBPyConnection, key: dg.AssetKey) -> dict[str, Any]:
    relation = f"{quote_ident(key.path[0])}.{quote_ident(key.path[1])}"
    rows = con.execute(f"select count(*) from {relation}").fetchone()[0]
    # Asset metadata lives in Dagster's run storage, which erasure can only scrub after the
    # fact: it never holds a member id, only the member's pseudonym (docs/privacy.md).
    sample = con.execute(
        f"select * from {relation} order by user_key limit {SAMPLE_MEMBERS}").fetchall()
    names = [d[0] for d in con.description]
    shown = [i for i, name in enumerate(names) if not IDENTITY_COLUMN.match(name)]
    keys = PrivacyKeys.from_settings()
    columns = ["member_ref", *(names[i] for i in shown)]
    table = "| " + " | ".join(columns) + " |\n|" + "---|" * len(columns) + "\n" + "".join(
        "| " + " | ".join([keys.pseudonym("member", str(row[names.index("user_key")])),
                           *(str(row[i]) for i in shown)]) + " |\n" for row in sample)
    # Who this build's as_of let in and out (the UI plots each number over materializations).
    entered, exited = con.execute(
        "select count(*) filter (where entered_at = built.as_of), "
        "count(*) filter (where exited_at = built.as_of) "
        "from segments.segment_membership_history, "
        "(select max(as_of) as as_of from marts.dim_users) as built where segment = ?",
        [key.path[1]]).fetchone()
    return {"members": dg.MetadataValue.int(int(rows)),
            "entered": dg.MetadataValue.int(int(entered)),
            "exited": dg.MetadataValue.int(int(exited)),
            "dagster/row_count": dg.MetadataValue.int(int(rows)),
            "sample_members": dg.MetadataValue.md(table)}


def with_segment_sizes(events: Iterator[Any], segment_keys: set[dg.AssetKey],
                       warehouse: str) -> Iterator[Any]:
    """Pass dbt events through; hold back the segment ones until dbt has exited.

    Sizes and sample members can only be read once dbt (the writer) has released the
    DuckDB file, so segment outputs and their test results are released at the end,
    in their original order, with the size attached (the UI plots it over time).
    """

    def segment_of(event: Any) -> dg.AssetKey | None:
        key = getattr(event, "asset_key", None)
        if isinstance(event, dg.Output):
            key = dg.AssetKey(event.output_name.split("__"))
        return key if key in segment_keys else None

    held: list[Any] = []
    for event in events:
        if segment_of(event) is not None:
            held.append(event)
        else:
            yield event
    if not held:
        return
    with duckdb.connect(warehouse, read_only=True) as con:
        for event in held:
            if isinstance(event, dg.Output):
                event = event.with_metadata({**event.metadata,
                                             **_segment_metadata(con, segment_of(event))})
            yield event


# The models that read the prediction scores (user_predictions, dim_users, the segments...)
# are built by a second step, after the scoring step has written raw.prediction_scores from
# int_user_features, which the first step builds (orchestration/defs/predictions.py).
SCORED_MODELS = "source:raw.prediction_scores+"
WAREHOUSE_MODELS_STEP = "warehouse_dbt_models"
SCORED_MODELS_STEP = "warehouse_dbt_scored_models"
DBT_STEPS = (WAREHOUSE_MODELS_STEP, SCORED_MODELS_STEP)


def build_dbt_models(project: WarehouseProject) -> list[dg.AssetsDefinition]:
    segment_keys = {asset_key_for("segments", s.name) for s in project.segments}

    @dbt_assets(
        manifest=project.manifest,
        project=project.dbt,
        dagster_dbt_translator=WarehouseTranslator(),
        name=WAREHOUSE_MODELS_STEP,
        exclude=SCORED_MODELS,
        pool=WAREHOUSE_POOL,
    )
    def warehouse_dbt_models(context: dg.AssetExecutionContext, dbt: DbtCliResource,
                             settings: WarehouseSettings, config: DbtBuildConfig):
        yield from dbt.cli(build_args(config, settings), context=context).stream()

    @dbt_assets(
        manifest=project.manifest,
        project=project.dbt,
        dagster_dbt_translator=WarehouseTranslator(),
        name=SCORED_MODELS_STEP,
        select=SCORED_MODELS,
        pool=WAREHOUSE_POOL,
    )
    def warehouse_dbt_scored_models(context: dg.AssetExecutionContext, dbt: DbtCliResource,
                                    settings: WarehouseSettings, config: DbtBuildConfig):
        events = dbt.cli(build_args(config, settings), context=context).stream()
        # with the Spark target, the sizes are read from Spark's tables (ewh.spark.tables)
        yield from with_segment_sizes(events, segment_keys,
                                      str(tables_for_reads(settings.get())))

    return [warehouse_dbt_models, warehouse_dbt_scored_models]


@dg.definitions
def defs() -> dg.Definitions:
    return dg.Definitions(assets=build_dbt_models(warehouse_project()))
