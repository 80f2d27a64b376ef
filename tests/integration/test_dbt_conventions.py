"""dbt conventions of the public tables: groups and owners, enforced contracts, exposures,
the docs overview, analyses; and `dbt docs generate` on a built warehouse shows them."""

from __future__ import annotations

import json
import re
from pathlib import Path

from dbt_runner import run_dbt

from ewh.common.settings import PROJECT_ROOT
from ewh.segments.catalog import segments_from_manifest

PUBLIC = ("marts", "segments")


def _manifest() -> dict:
    from orchestration.project import warehouse_project

    return warehouse_project().manifest


def _models(manifest: dict) -> list[dict]:
    return [n for n in manifest["nodes"].values() if n["resource_type"] == "model"]


def test_every_model_has_a_group_whose_owner_is_named():
    manifest = _manifest()
    groups = {g["name"]: g for g in manifest["groups"].values()}
    assert set(groups) == {"data_platform", "analytics", "marketing"}
    assert all(g["owner"]["name"] and g["owner"]["email"] for g in groups.values())
    for node in _models(manifest):
        assert node["group"] in groups, node["name"]
        assert node["config"]["meta"].get("owner"), node["name"]


def test_public_tables_are_contracted_with_a_type_on_every_column():
    for node in _models(_manifest()):
        if node["schema"] not in PUBLIC:
            assert node["access"] != "public", node["name"]
            continue
        assert node["access"] == "public" and node["contract"]["enforced"], node["name"]
        assert node["columns"], node["name"]
        untyped = [c for c, spec in node["columns"].items() if not spec.get("data_type")]
        assert untyped == [], (node["name"], untyped)


def test_exposures_name_every_exported_segment_and_the_api_every_segment():
    manifest = _manifest()
    segments = segments_from_manifest(manifest)
    exposures = {e["name"]: e for e in manifest["exposures"].values()}
    assert set(exposures) == {"segment_exports", "segment_api", "analyst_report",
                              "promotion_api"}
    exports = set(exposures["segment_exports"]["depends_on"]["nodes"])
    content = {"model.engagement_warehouse.user_send_times",
               "model.engagement_warehouse.user_recommendations"}
    assert exports == {s.unique_id for s in segments if s.exported} | content
    assert content <= set(exposures["promotion_api"]["depends_on"]["nodes"])
    assert {s.unique_id for s in segments} <= set(exposures["segment_api"]["depends_on"]["nodes"])


def test_the_docs_overview_and_the_analyses_are_there():
    manifest = _manifest()
    overview = manifest["docs"]["doc.engagement_warehouse.__overview__"]["block_contents"]
    assert "segment_members_at" in overview and "contract" in overview
    analyses = {n["name"] for n in manifest["nodes"].values()
                if n["resource_type"] == "analysis"}
    listed = set(re.findall(r"`(\w+)\.sql`", (PROJECT_ROOT / "analyses" / "README.md").read_text()))
    files = {p.stem for p in (PROJECT_ROOT / "analyses").glob("*.sql")}
    assert analyses == listed == files and "segment_members_at" in analyses


def test_dbt_docs_generate_shows_groups_owners_and_contracts(backfilled, tmp_path: Path):
    run_dbt(backfilled.warehouse, tmp_path, "docs", "generate", "--vars",
            '{as_of: "2026-06-30 12:00:00"}')
    target = tmp_path / "target"
    assert (target / "index.html").exists()
    manifest = json.loads((target / "manifest.json").read_text())
    catalog = json.loads((target / "catalog.json").read_text())
    node = manifest["nodes"]["model.engagement_warehouse.seg_cart_abandoners"]
    assert node["group"] == "marketing" and node["contract"]["enforced"]
    assert node["config"]["meta"]["owner"] == "marketing-ops"
    assert node["config"]["meta"]["segment"]["owner"] == "growth-team"
    table = catalog["nodes"]["model.engagement_warehouse.seg_cart_abandoners"]
    assert table["metadata"]["owner"] == "growth-team"  # the segment's own team
    mart = catalog["nodes"]["model.engagement_warehouse.dim_users"]["metadata"]["owner"]
    assert mart == "analytics-team"
    assert {c.lower() for c in table["columns"]} == set(node["columns"])


def test_money_is_in_cents_in_every_public_table(backfilled):
    """Revenue and cart values (reporting currency) carry no fraction of a cent, so they
    print as 4391.76, not 4391.759999999999."""
    import duckdb

    with duckdb.connect(str(backfilled.warehouse), read_only=True) as con:
        money = con.execute(
            "select table_schema, table_name, column_name from information_schema.columns "
            "where table_schema in ('marts', 'segments') and data_type = 'DOUBLE' and "
            "regexp_matches(column_name, 'revenue|cart_value|order_value')").fetchall()
        assert len(money) >= 8
        for schema, table, column in money:
            off = con.execute(
                f'select count(*) from "{schema}"."{table}" where "{column}" is not null '
                f'and abs("{column}" * 100 - round("{column}" * 100)) > 1e-6').fetchone()[0]
            assert off == 0, (table, column)
