"""The warehouse suites on small real DuckDB files: clean data passes, each kind of bad row
fails exactly the rule it breaks, with its severity, the right count and the column named."""

from __future__ import annotations

import hashlib
import json
import os
import re
from pathlib import Path

import duckdb
import pytest
from quality_warehouse import AS_OF, SEGMENT, build_warehouse, copy_project, execute

from ewh.quality import volume
from ewh.quality.catalog import FIXED_SUITES, all_suites
from ewh.quality.project import (
    DUCKDB_CONNECT_ARGS,
    GENERATED_DIRS,
    PROJECT_DIR,
    checkpoint_name,
    data_docs_index,
    gx_suite,
    prune_runs,
    strip_ids,
    validation_definition_name,
)
from ewh.quality.validate import SuiteResult, has_error_failures, validate_warehouse

SUITE_NAMES = [*FIXED_SUITES, SEGMENT.name]


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return copy_project(tmp_path_factory.mktemp("gx"))


@pytest.fixture
def warehouse(tmp_path: Path) -> Path:
    path = tmp_path / "warehouse.duckdb"
    build_warehouse(path)
    return path


def _run(path: Path, project: Path, build_docs: bool = False, segments=(SEGMENT,),
         **kwargs) -> dict[str, SuiteResult]:
    results = validate_warehouse(path, build_docs=build_docs, as_of=AS_OF,
                                 segments=segments, project_dir=project, **kwargs)
    return {r.suite: r for r in results}


def test_clean_warehouse_passes_every_suite(warehouse: Path, project: Path) -> None:
    results = _run(warehouse, project)
    assert list(results) == SUITE_NAMES
    for result in results.values():
        assert [e.message for e in result.failures] == []
    assert not has_error_failures(results.values())


def test_every_expectation_declares_error_or_warn() -> None:
    for spec in all_suites([SEGMENT]).values():
        for expectation in spec.to_gx_suite().expectations:
            assert (expectation.meta or {}).get("severity") in ("error", "warn"), spec.name


ERRORS = [
    # raw.events
    pytest.param(["alter table raw.events alter column message_id drop not null",
                  "update raw.events set message_id = null where message_id in ('m1', 'm2')"],
                 "raw_events", "expect_column_values_to_not_be_null", "message_id", 2,
                 "raw.events.message_id: 2 null values", id="raw null message_id"),
    pytest.param(["update raw.events set message_id = 'm0' where message_id = 'm3'"],
                 "raw_events", "expect_column_values_to_be_unique", "message_id", 2,
                 "raw.events.message_id: 2 rows with a duplicated value", id="raw duplicate id"),
    pytest.param(["update raw.events set received_at = '2027-06-01' where message_id = 'm4'"],
                 "raw_events", "expect_column_values_to_be_between", "received_at", 1,
                 "raw.events.received_at: 1 values above 2026-11-02 12:00:00", id="raw future"),
    # 90 days ahead of receipt: the finding that only warned. The contract refuses it, so
    # such a row was planted around it; it must stop the refresh.
    pytest.param(["update raw.events set occurred_at = timestamp '2026-11-01 10:00:00' "
                  "+ interval 90 day where message_id in ('m1', 'm3')"],
                 "raw_events", "unexpected_rows_expectation", "occurred_at", 2,
                 "raw.events.occurred_at: 2 rows with occurred_at more than 24 h after "
                 "received_at", id="raw occurred_at ahead of receipt"),
    pytest.param(["update raw.events set sent_at = timestamp '2026-11-02 10:00:01' "
                  "where message_id = 'm2'"],
                 "raw_events", "unexpected_rows_expectation", "sent_at", 1,
                 "raw.events.sent_at: 1 rows with sent_at more than 24 h after received_at",
                 id="raw sent_at a second past 24 h ahead"),
    pytest.param(["update raw.events set user_id = null, anonymous_id = null "
                  "where message_id = 'm5'"],
                 "raw_events", "expect_column_values_to_not_be_null", "anonymous_id", 1,
                 "raw.events.anonymous_id: 1 null values where user_id IS NULL", id="raw no id"),
    pytest.param(["update raw.events set message_type = 'Track' where message_id = 'm0'"],
                 "raw_events", "expect_column_values_to_be_in_set", "message_type", 1,
                 "raw.events.message_type: 1 values not in", id="raw unknown message_type"),
    # staging.stg_events
    pytest.param(["insert into staging.stg_events select * from staging.stg_events "
                  "where message_id = 'm2'"],
                 "stg_events", "expect_column_values_to_be_unique", "message_id", 2,
                 "staging.stg_events.message_id: 2 rows with a duplicated value",
                 id="stg duplicate survives dedupe"),
    pytest.param(["update staging.stg_events set occurred_at = '2026-11-03' "
                  "where message_id = 'm1'"],
                 "stg_events", "expect_column_values_to_be_between", "occurred_at", 1,
                 "staging.stg_events.occurred_at: 1 values above 2026-11-02 12:00:00",
                 id="stg future occurred_at"),
    pytest.param(["update staging.stg_events set revenue = -12.5 where message_id = 'm0'"],
                 "stg_events", "expect_column_values_to_be_between", "revenue", 1,
                 "staging.stg_events.revenue: 1 values below 0", id="stg negative revenue"),
    # marts.fct_sessions
    pytest.param(["update marts.fct_sessions set ended_at = started_at - interval 1 hour "
                  "where session_id = 's1'"],
                 "fct_sessions", "expect_column_pair_values_a_to_be_greater_than_b", "ended_at",
                 1, "marts.fct_sessions.ended_at: 1 rows where ended_at < started_at",
                 id="session ends before it starts"),
    pytest.param(["update marts.fct_sessions set revenue = -5 where session_id = 's2'"],
                 "fct_sessions", "expect_column_values_to_be_between", "revenue", 1,
                 "marts.fct_sessions.revenue: 1 values below 0", id="session negative revenue"),
    # marts.dim_users
    pytest.param(["update marts.dim_users set revenue = -1 where user_key = 'u0'"],
                 "dim_users", "expect_column_values_to_be_between", "revenue", 1,
                 "marts.dim_users.revenue: 1 values below 0", id="user negative revenue"),
    pytest.param(["update marts.dim_users set recency_score = 6 where user_key = 'u1'"],
                 "dim_users", "expect_column_values_to_be_between", "recency_score", 1,
                 "marts.dim_users.recency_score: 1 values outside [1, 5]", id="RFM score 6"),
    # segments.segment_membership_history
    pytest.param(["insert into segments.segment_membership_history values ('h4', 'u2', "
                  "'seg_test', '2026-10-12', '2026-10-20', false)"],
                 "segment_membership_history", "unexpected_rows_expectation", "entered_at", 1,
                 "segments.segment_membership_history.entered_at: 1 spells that overlap",
                 id="overlapping spells"),
    pytest.param(["update segments.segment_membership_history set is_current = false "
                  "where membership_id = 'h3'"],
                 "segment_membership_history", "unexpected_rows_expectation", "is_current", 1,
                 "segments.segment_membership_history.is_current: 1 rows where is_current "
                 "disagrees", id="is_current disagrees with exited_at"),
    # segments.seg_test (the segment template)
    pytest.param(["insert into segments.seg_test values ('u9', 'u9', 1)"],
                 "seg_test", "unexpected_rows_expectation", "user_key", 1,
                 "segments.seg_test.user_key: 1 members missing from marts.dim_users",
                 id="member missing from dim_users"),
    pytest.param(["update marts.dim_users set has_analytics_consent = false "
                  "where user_key = 'u2'"],
                 "seg_test", "unexpected_rows_expectation", "user_key", 1,
                 "segments.seg_test.user_key: 1 members without analytics consent",
                 id="member without consent"),
    pytest.param(["insert into segments.seg_test values ('u1', 'u1', 1)"],
                 "seg_test", "expect_column_values_to_be_unique", "user_key", 2,
                 "segments.seg_test.user_key: 2 rows with a duplicated value",
                 id="member listed twice"),
]  # fmt: skip


@pytest.mark.parametrize(("sql", "suite", "expectation", "column", "count", "text"), ERRORS)
def test_bad_rows_fail_exactly_the_error_rule_they_break(
    warehouse: Path, project: Path, sql: list[str], suite: str, expectation: str,
    column: str, count: int, text: str,
) -> None:
    execute(warehouse, *sql)
    results = _run(warehouse, project, suites=[suite])  # one suite: 0.4 s instead of 2.5 s
    errors = [(e.expectation_type, e.column) for r in results.values() for e in r.errors]
    assert errors == [(expectation, column)]
    (failure,) = results[suite].errors
    assert failure.unexpected_count == count
    assert text in failure.message
    assert failure.message.endswith(f"({expectation}, error)")
    assert has_error_failures(results.values())


def test_samples_name_the_offending_rows(warehouse: Path, project: Path) -> None:
    execute(warehouse,
            "update marts.fct_sessions set revenue = -5 where session_id = 's2'",
            "insert into segments.segment_membership_history values "
            "('h4', 'u2', 'seg_test', '2026-10-12', '2026-10-20', false)")
    results = _run(warehouse, project, suites=["fct_sessions", "segment_membership_history"])
    (revenue,) = results["fct_sessions"].failures
    assert (revenue.sample_values, revenue.sample_keys) == ((-5,), ("s2",))
    (overlap,) = results["segment_membership_history"].failures
    assert overlap.sample_keys == ("h4",)
    assert [str(v) for v in overlap.sample_values] == ["2026-10-12 00:00:00"]


WARNINGS = [
    pytest.param(["update raw.events set received_at = '2024-01-01', occurred_at = null, "
                  "sent_at = null where message_id = 'm1'"],
                 "raw_events", "received_at", "raw.events.received_at: 1 values below "
                 "2025-09-27 12:00:00", id="event older than 400 days"),
    # (client times moved along: ahead of receipt by two days they would be an error)
    pytest.param(["update raw.events set received_at = '2026-10-30 12:00:00', "
                  "occurred_at = '2026-10-30 12:00:00', sent_at = '2026-10-30 12:00:00'"],
                 "raw_events", "received_at", "raw.events.received_at: latest value "
                 "2026-10-30 12:00:00 is older than 2026-10-31 12:00:00", id="raw not fresh"),
    pytest.param(["update staging.stg_events set event_type = 'other' where message_id = 'm0'"],
                 "stg_events", "event_type", "staging.stg_events.event_type: 1 values not in",
                 id="unmapped event names over 5%"),
    pytest.param(["update staging.stg_events set price = -1 where message_id = 'm0'"],
                 "stg_events", "price", "staging.stg_events.price: 1 values below 0",
                 id="negative price"),
]  # fmt: skip


@pytest.mark.parametrize(("sql", "suite", "column", "text"), WARNINGS)
def test_warnings_are_reported_and_do_not_block(
    warehouse: Path, project: Path, sql: list[str], suite: str, column: str, text: str
) -> None:
    execute(warehouse, *sql)
    results = _run(warehouse, project, suites=[suite])
    (failure,) = [f for r in results.values() for f in r.failures]
    assert (failure.column, failure.severity) == (column, "warn")
    assert text in failure.message
    assert not has_error_failures(results.values())


def test_segment_size_outside_the_tolerance_warns_once_and_moves_the_baseline(
    warehouse: Path, project: Path
) -> None:
    # Previous run: 100 members, so the band is [floor(50) - 10, ceil(150) + 10] = [40, 160].
    volume.record_sizes(warehouse, {SEGMENT.name: 100}, AS_OF)
    (failure,) = _run(warehouse, project, suites=[SEGMENT.name])[SEGMENT.name].failures
    assert (failure.expectation_type, failure.severity) == (
        "expect_table_row_count_to_be_between", "warn")
    assert "segments.seg_test: 2 rows, outside the accepted [40, 160]" in failure.message
    assert "previous run 100" in failure.message
    assert volume.read_sizes(warehouse)[SEGMENT.name] == 2
    assert _run(warehouse, project, suites=[SEGMENT.name])[SEGMENT.name].success  # in [0, 11]


def test_sizes_of_a_segment_with_errors_are_not_recorded(warehouse: Path, project: Path) -> None:
    execute(warehouse, "insert into segments.seg_test values ('u9', 'u9', 1)")
    _run(warehouse, project, suites=[SEGMENT.name])
    assert SEGMENT.name not in volume.read_sizes(warehouse)
    execute(warehouse, "delete from segments.seg_test where user_key = 'u9'")
    _run(warehouse, project, suites=[SEGMENT.name], record_volumes=False)
    assert SEGMENT.name not in volume.read_sizes(warehouse)


def test_missing_optional_rfm_columns_only_warn(warehouse: Path, project: Path) -> None:
    execute(warehouse, "alter table marts.dim_users drop column recency_score")
    results = _run(warehouse, project, suites=["dim_users"])
    (failure,) = results["dim_users"].failures
    assert failure.severity == "warn"
    assert failure.message.startswith(
        "marts.dim_users.recency_score: optional column not built yet")
    assert not has_error_failures(results.values())


def test_missing_required_column_is_schema_drift(warehouse: Path, project: Path) -> None:
    execute(warehouse, "alter table raw.events drop column file_checksum")
    (failure,) = _run(warehouse, project, suites=["raw_events"])["raw_events"].failures
    assert failure.expectation_type == "expect_table_columns_to_match_set"
    assert "1 missing columns ['file_checksum']" in failure.message
    assert failure.severity == "error"


def test_missing_table_is_a_failed_error_not_a_crash(warehouse: Path, project: Path) -> None:
    execute(warehouse, "drop table marts.fct_sessions")
    results = _run(warehouse, project, suites=["raw_events", "fct_sessions"])
    (failure,) = results["fct_sessions"].failures
    assert failure.severity == "error"
    assert "marts.fct_sessions: table does not exist" in failure.message
    assert results["raw_events"].success


def test_one_suite_can_be_selected(warehouse: Path, project: Path) -> None:
    assert list(_run(warehouse, project, suites=["seg_test"])) == ["seg_test"]
    with pytest.raises(ValueError, match="unknown suites"):
        _run(warehouse, project, suites=["nope"])


def test_data_docs_are_built_and_each_result_links_its_page(
    warehouse: Path, project: Path
) -> None:
    results = _run(warehouse, project, build_docs=True)
    assert data_docs_index(project).exists()
    for result in results.values():
        assert result.docs_url and result.docs_url.startswith("file://")
        assert Path(result.docs_url.removeprefix("file://")).exists()


def test_data_docs_open_offline_with_suite_pages_and_severity(
    warehouse: Path, project: Path
) -> None:
    """Every page loads only local files (GX's CDN links point at the site's static/vendor
    copies, installed from npm), the index's suite links resolve, and each expectation shows
    its severity."""
    from ewh.quality.docs_assets import remote_loads
    from ewh.quality.project import data_docs_dir

    _run(warehouse, project, build_docs=True)
    site = data_docs_dir(project)
    pages = list(site.rglob("*.html"))
    assert len(pages) >= 2 * len(SUITE_NAMES) + 1
    assert {str(p): remote_loads(p) for p in pages if remote_loads(p)} == {}
    index = (site / "index.html").read_text()
    for name in SUITE_NAMES:
        assert f'href="expectations/{name}.html"' in index
        assert (site / "expectations" / f"{name}.html").exists()
    referenced = set()
    for page in pages:
        for link in re.findall(r'(?:src|href)="([^"#?]+)"', page.read_text()):
            if not link.startswith(("http", "mailto:", "javascript:", "data:")):
                referenced.add((page.parent / link).resolve())
    assert [str(p) for p in referenced if not p.exists()] == []
    suite_page = (site / "expectations" / "raw_events.html").read_text()
    assert "severity: error" in suite_page and "severity: warn" in suite_page


def test_old_results_are_pruned_to_the_newest_runs(tmp_path: Path) -> None:
    runs = tmp_path / "gx" / "uncommitted" / "validations" / "raw_events" / "__none__"
    for stamp in ("20261101T000000Z", "20261102T000000Z", "20261103T000000Z"):
        (runs / stamp).mkdir(parents=True)
    prune_runs(tmp_path, keep=2)
    assert sorted(p.name for p in runs.iterdir()) == ["20261102T000000Z", "20261103T000000Z"]


def test_warehouse_is_writable_in_process_after_repeated_validation(
    warehouse: Path, project: Path
) -> None:
    _run(warehouse, project, suites=["raw_events"])
    _run(warehouse, project, suites=["seg_test"], build_docs=True)
    con = duckdb.connect(str(warehouse))  # read-write, the default configuration
    con.execute("insert into marts.fct_sessions select * from marts.fct_sessions limit 0")
    assert con.execute("select count(*) from raw.events").fetchone() == (6,)
    con.close()


def _files(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file() and "uncommitted" not in p.relative_to(root).parts
    }


def test_segments_are_wired_from_the_manifest_once_then_unwired(
    warehouse: Path, tmp_path: Path
) -> None:
    project = copy_project(tmp_path / "fresh")
    gx_dir = project / "gx"
    only = ["raw_events"]  # the wiring follows the catalog whatever suites run
    _run(warehouse, project, segments=(), suites=only)
    before = _files(gx_dir)
    _run(warehouse, project, suites=only)
    added = set(_files(gx_dir)) - set(before)
    assert added == {"expectations/seg_test.json", "checkpoints/seg_test_checkpoint.json",
                     "validation_definitions/seg_test_on_segments_seg_test.json"}
    wired = _files(gx_dir)
    _run(warehouse, project, suites=only)
    assert _files(gx_dir) == wired  # in sync: nothing rewritten
    _run(warehouse, project, segments=(), suites=only)
    assert _files(gx_dir) == before


def test_committed_config_keeps_the_url_placeholder_and_connect_args() -> None:
    yml = (PROJECT_DIR / "gx" / "great_expectations.yml").read_text()
    assert "${EWH_GX_WAREHOUSE_URL}" in yml
    # write_project keeps an existing datasource: its connect args must match the code.
    limit = DUCKDB_CONNECT_ARGS["config"]["memory_limit"]
    assert f"memory_limit: {limit}" in yml and "read_only: true" in yml


def _code_json(spec) -> object:
    return strip_ids(json.loads(json.dumps(gx_suite(spec).to_json_dict(), default=str)))


def test_validation_starts_from_a_project_without_generated_files(
    warehouse: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # What a fresh clone holds: great_expectations.yml and the plugin, nothing generated.
    folder = copy_project(tmp_path / "clone")
    gx_dir = folder / "gx"
    assert not [d for d in GENERATED_DIRS if (gx_dir / d).exists()]
    context_id = re.search(r"^data_context_id: (\S+)$",
                           (gx_dir / "great_expectations.yml").read_text(), re.M)
    assert context_id
    monkeypatch.setenv("EWH_GX_PROJECT_DIR", str(folder))  # the folder a run uses by default

    results = validate_warehouse(warehouse, as_of=AS_OF, segments=(SEGMENT,))

    assert [r.suite for r in results] == SUITE_NAMES
    assert [f.message for r in results for f in r.failures] == []
    assert data_docs_index(folder).exists()
    for spec in all_suites([SEGMENT]).values():
        suite = json.loads((gx_dir / "expectations" / f"{spec.name}.json").read_text())
        assert strip_ids(suite) == _code_json(spec), spec.name
        assert (gx_dir / "checkpoints" / f"{checkpoint_name(spec)}.json").exists()
        definition = gx_dir / "validation_definitions" / f"{validation_definition_name(spec)}.json"
        assert definition.exists()
    # GX writes its store id from the committed data_context_id, which it leaves alone.
    assert (gx_dir / "expectations" / ".ge_store_backend_id").read_text() == (
        f"store_backend_id = {context_id.group(1)}\n")
    assert f"data_context_id: {context_id.group(1)}\n" in (
        gx_dir / "great_expectations.yml").read_text()
    generated = _files(gx_dir)
    assert [r.suite for r in validate_warehouse(warehouse, as_of=AS_OF, segments=(SEGMENT,),
                                                build_docs=False)] == SUITE_NAMES
    assert _files(gx_dir) == generated  # in sync: nothing rewritten


def test_a_suite_changed_in_code_is_rewritten_at_the_next_run(
    warehouse: Path, tmp_path: Path
) -> None:
    project = copy_project(tmp_path / "stale")
    _run(warehouse, project, suites=["raw_events"])
    stored = project / "gx" / "expectations" / "raw_events.json"
    suite = json.loads(stored.read_text())
    suite["expectations"].pop()  # as if suites.py had gained an expectation since
    stored.write_text(json.dumps(suite))
    (project / "gx" / "checkpoints" / "fct_sessions_checkpoint.json").unlink()
    results = _run(warehouse, project, suites=["raw_events", "fct_sessions"])
    assert all(r.success for r in results.values())
    assert strip_ids(json.loads(stored.read_text())) == _code_json(FIXED_SUITES["raw_events"])
    assert (project / "gx" / "checkpoints" / "fct_sessions_checkpoint.json").exists()


def test_project_folder_can_be_redirected_by_environment(monkeypatch, tmp_path: Path) -> None:
    from ewh.quality.validate import gx_project_dir

    monkeypatch.setenv("EWH_GX_PROJECT_DIR", str(tmp_path))
    assert gx_project_dir() == tmp_path
    monkeypatch.delenv("EWH_GX_PROJECT_DIR")
    assert gx_project_dir() == PROJECT_DIR
    assert os.environ.get("EWH_GX_PROJECT_DIR") is None
