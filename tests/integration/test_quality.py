"""The warehouse suites on small real DuckDB files: clean data passes, each kind of bad row
fails exactly the rule it breaks, with the right count and the column named."""

from __future__ import annotations

import hashlib
import json
from datetime import datetime
from pathlib import Path

import duckdb
import pytest

from ewh.quality.project import PROJECT_DIR
from ewh.quality.suites import SUITES
from ewh.quality.validate import (
    SuiteResult,
    data_docs_index,
    has_error_failures,
    validate_warehouse,
)
from ewh.raw_schema import ensure_raw_tables

AS_OF = datetime(2026, 11, 1, 12, 0, 0)


def _event(i: int, message_type: str = "track", received: str = "2026-10-31 10:00:00") -> str:
    user = f"'u{i}'" if i % 2 else "null"
    return (
        f"('m{i}', '{message_type}', 'Product Viewed', {user}, 'a{i}', "
        f"timestamp '{received}', timestamp '{received}', timestamp '{received}', '{{}}', "
        f"'file:events.jsonl:{i}', 'sha', 'load-1', timestamp '2026-10-31 11:00:00')"
    )


def _build(path: Path, with_sessions: bool = True) -> None:
    con = duckdb.connect(str(path))
    ensure_raw_tables(con)
    types = ["track", "identify", "page", "screen", "alias", "group"]
    rows = ", ".join(_event(i, t) for i, t in enumerate(types))
    con.execute(f"insert into raw.events values {rows}")
    if with_sessions:
        con.execute("create schema marts")
        con.execute(
            """create table marts.fct_sessions as select
                's' || i as session_id, 'u' || i as user_key, 'u' || i as user_id,
                'a' || i as device_id,
                timestamp '2026-10-31 10:00:00' as started_at,
                timestamp '2026-10-31 10:05:00' as ended_at,
                300 as duration_seconds, 3 as event_count, 2 as page_views,
                '/' as landing_page, '/pricing' as exit_page, null as referrer,
                'google' as utm_source, 'cpc' as utm_medium, 'fall' as utm_campaign,
                'paid_search' as channel, 'desktop' as device_type, false as is_bounce,
                i = 1 as has_add_to_cart, i = 2 as has_purchase,
                case when i = 2 then 19.99 end as revenue
            from range(3) r(i)"""
        )
    con.close()


@pytest.fixture
def warehouse(tmp_path: Path) -> Path:
    path = tmp_path / "warehouse.duckdb"
    _build(path)
    return path


def _run(path: Path, build_docs: bool = False) -> dict[str, SuiteResult]:
    return {r.suite: r for r in validate_warehouse(path, build_docs=build_docs, as_of=AS_OF)}


def _execute(path: Path, *statements: str) -> None:
    con = duckdb.connect(str(path))
    for statement in statements:
        con.execute(statement)
    con.close()


def test_clean_warehouse_passes_every_expectation(warehouse: Path) -> None:
    results = _run(warehouse)
    assert set(results) == set(SUITES)
    for result in results.values():
        assert [e.message for e in result.failures] == []
        assert result.success
    assert not has_error_failures(results.values())


def test_every_expectation_declares_error_or_warn() -> None:
    for spec in SUITES.values():
        for expectation in spec.to_gx_suite().expectations:
            assert (expectation.meta or {}).get("severity") in ("error", "warn")


BAD_ROWS = [
    pytest.param(
        [
            "alter table raw.events alter column message_id drop not null",
            "update raw.events set message_id = null where message_id in ('m1', 'm2')",
        ],
        "raw_events", "expect_column_values_to_not_be_null", "message_id", 2,
        "raw.events.message_id: 2 null values (expect_column_values_to_not_be_null, error)",
        id="null message_id",
    ),
    pytest.param(
        ["update raw.events set message_id = 'm0' where message_id = 'm3'"],
        "raw_events", "expect_column_values_to_be_unique", "message_id", 2,
        "raw.events.message_id: 2 rows with a duplicated value",
        id="duplicate message_id",
    ),
    pytest.param(
        ["update raw.events set received_at = timestamp '2027-06-01' where message_id = 'm4'"],
        "raw_events", "expect_column_values_to_be_between", "received_at", 1,
        "raw.events.received_at: 1 values above 2026-11-02 12:00:00",
        id="received_at far in the future",
    ),
    pytest.param(
        ["update raw.events set user_id = null, anonymous_id = null where message_id = 'm5'"],
        "raw_events", "expect_column_values_to_not_be_null", "anonymous_id", 1,
        "raw.events.anonymous_id: 1 null values where user_id IS NULL",
        id="neither user_id nor anonymous_id",
    ),
    pytest.param(
        ["update raw.events set message_type = 'Track' where message_id = 'm0'"],
        "raw_events", "expect_column_values_to_be_in_set", "message_type", 1,
        "raw.events.message_type: 1 values not in",
        id="unknown message_type",
    ),
    pytest.param(
        ["update marts.fct_sessions set ended_at = started_at - interval 1 hour "
         "where session_id = 's1'"],
        "fct_sessions", "expect_column_pair_values_a_to_be_greater_than_b", "ended_at", 1,
        "marts.fct_sessions.ended_at: 1 rows where ended_at < started_at",
        id="ended_at before started_at",
    ),
    pytest.param(
        ["update marts.fct_sessions set revenue = -5 where session_id = 's2'"],
        "fct_sessions", "expect_column_values_to_be_between", "revenue", 1,
        "marts.fct_sessions.revenue: 1 values below 0",
        id="negative revenue",
    ),
    pytest.param(
        ["insert into marts.fct_sessions select * from marts.fct_sessions where session_id = 's0'"],
        "fct_sessions", "expect_column_values_to_be_unique", "session_id", 2,
        "marts.fct_sessions.session_id: 2 rows with a duplicated value",
        id="duplicate session_id",
    ),
]  # fmt: skip


@pytest.mark.parametrize(("sql", "suite", "expectation", "column", "count", "text"), BAD_ROWS)
def test_bad_rows_fail_exactly_the_rule_they_break(
    warehouse: Path,
    sql: list[str],
    suite: str,
    expectation: str,
    column: str,
    count: int,
    text: str,
) -> None:
    _execute(warehouse, *sql)
    results = _run(warehouse)
    failures = results[suite].failures
    assert [(f.expectation_type, f.column) for f in failures] == [(expectation, column)]
    (failure,) = failures
    assert failure.unexpected_count == count
    assert failure.severity == "error"
    assert text in failure.message
    assert has_error_failures(results.values())
    other = next(r for name, r in results.items() if name != suite)
    assert other.success


def test_samples_name_the_offending_rows(warehouse: Path) -> None:
    _execute(warehouse, "update marts.fct_sessions set revenue = -5 where session_id = 's2'")
    (failure,) = _run(warehouse)["fct_sessions"].failures
    assert failure.sample_values == (-5,)
    assert failure.sample_keys == ("s2",)


def test_old_events_only_warn_and_do_not_block(warehouse: Path) -> None:
    _execute(warehouse, "update raw.events set received_at = '2024-01-01' where message_id = 'm1'")
    results = _run(warehouse)
    (failure,) = results["raw_events"].failures
    assert (failure.column, failure.severity) == ("received_at", "warn")
    assert failure.unexpected_count == 1
    assert not has_error_failures(results.values())


def test_missing_column_is_schema_drift(warehouse: Path) -> None:
    _execute(warehouse, "alter table raw.events drop column file_checksum")
    (failure,) = _run(warehouse)["raw_events"].failures
    assert failure.expectation_type == "expect_table_columns_to_match_set"
    assert "1 missing columns ['file_checksum']" in failure.message


def test_missing_table_is_a_failed_error_not_a_crash(tmp_path: Path) -> None:
    path = tmp_path / "warehouse.duckdb"
    _build(path, with_sessions=False)
    results = _run(path)
    assert results["raw_events"].success
    sessions = results["fct_sessions"]
    assert not sessions.success
    (failure,) = sessions.failures
    assert failure.severity == "error"
    assert "marts.fct_sessions: table does not exist" in failure.message
    assert has_error_failures(results.values())


def test_one_suite_can_be_selected(warehouse: Path) -> None:
    results = validate_warehouse(warehouse, suites=["fct_sessions"], build_docs=False, as_of=AS_OF)
    assert [r.suite for r in results] == ["fct_sessions"]
    with pytest.raises(ValueError, match="unknown suites"):
        validate_warehouse(warehouse, suites=["nope"])


def test_data_docs_index_is_built(warehouse: Path) -> None:
    _run(warehouse, build_docs=True)
    index = data_docs_index()
    assert index.name == "index.html" and index.exists()
    assert "gx/uncommitted/" in index.as_posix()


def test_warehouse_is_writable_in_process_after_repeated_validation(warehouse: Path) -> None:
    _run(warehouse)
    _run(warehouse, build_docs=True)
    con = duckdb.connect(str(warehouse))  # read-write, the default configuration
    con.execute("insert into marts.fct_sessions select * from marts.fct_sessions limit 0")
    assert con.execute("select count(*) from raw.events").fetchone() == (6,)
    con.close()


def _strip_ids(value: object) -> object:
    if isinstance(value, dict):
        return {k: _strip_ids(v) for k, v in value.items() if k != "id"}
    if isinstance(value, list):
        return [_strip_ids(v) for v in value]
    return value


def test_committed_suites_are_what_the_code_defines() -> None:
    for spec in SUITES.values():
        committed_file = PROJECT_DIR / "gx" / "expectations" / f"{spec.name}.json"
        committed = json.loads(committed_file.read_text())
        written = json.loads(json.dumps(spec.to_gx_suite().to_json_dict()))
        assert _strip_ids(committed) == _strip_ids(written), (
            f"{spec.name}: run `python -m ewh.quality.project` to regenerate the committed suite"
        )
        assert (PROJECT_DIR / "gx" / "checkpoints" / f"{spec.name}_checkpoint.json").exists()


def _committed_files() -> dict[str, str]:
    root = PROJECT_DIR / "gx"
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file() and "uncommitted" not in p.relative_to(root).parts
    }


def test_validation_leaves_committed_project_untouched(warehouse: Path) -> None:
    before = _committed_files()
    _run(warehouse, build_docs=True)
    assert _committed_files() == before
    assert "${EWH_GX_WAREHOUSE_URL}" in (PROJECT_DIR / "gx" / "great_expectations.yml").read_text()
