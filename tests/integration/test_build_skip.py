"""`ewh build` skips a dbt build exactly when nothing it reads changed (real dbt and DuckDB).

The rule, from its words: a build is skipped when the raw tables, the project's code and the
command line (with a pinned as_of) equal those of the last successful `ewh build`, and no other
dbt invocation ran in between. Each step below changes one thing and expects the build to run
or to skip accordingly; whether dbt ran is read from dbt's own run_results.json (a new
invocation id), not from what `ewh build` prints.

The builds select `+stg_events` (the seeds and the first model): what is skipped does not
depend on what is selected, and one model keeps the test short.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import datetime, timedelta
from pathlib import Path

import duckdb
import pytest
from dbt_runner import dbt_command

from ewh.common.build_inputs import (
    BUILD_ENTRY,
    STATE_TABLE,
    _build_args,
    _code_digest,
    option_value,
    record_key,
    recorded_key,
)
from ewh.ingest.raw_tables import ensure_raw_tables

AS_OF = "2026-11-01 00:00:00"
LATER = "2026-11-02 00:00:00"
START = datetime(2026, 10, 20, 9, 0, 0)
SELECT = ("--select", "+stg_events", "--exclude-resource-type", "unit_test")


def _insert(warehouse: Path, first: int, count: int, message_type: str = "track") -> None:
    rows = []
    for n in range(first, first + count):
        at = START + timedelta(minutes=n)
        message = {"messageId": f"m{n}", "type": message_type, "event": "Product Viewed",
                   "userId": f"u{n % 3}", "anonymousId": f"a{n % 3}",
                   "timestamp": at.isoformat() + "Z", "properties": {"product_id": "p1"}}
        rows.append((f"m{n}", message_type, "Product Viewed", f"u{n % 3}", f"a{n % 3}", at, at,
                     at, json.dumps(message), f"test:{n}", None, "test-load", at))
    with duckdb.connect(str(warehouse)) as con:
        ensure_raw_tables(con)
        con.executemany("insert into raw.events values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                        rows)


def _sql(warehouse: Path, sql: str) -> list[tuple]:
    with duckdb.connect(str(warehouse)) as con:
        return con.execute(sql).fetchall()


class Builds:
    def __init__(self, warehouse: Path, work: Path) -> None:
        self.warehouse, self.work = warehouse, work
        self.last_output = ""

    def invocation(self) -> str | None:
        results = self.work / "target" / "run_results.json"
        return json.loads(results.read_text())["metadata"]["invocation_id"] \
            if results.exists() else None

    def ewh_build(self, *args: str, as_of: str | None = AS_OF,
                  env: dict[str, str] | None = None) -> bool:
        """`ewh build`, which must succeed; whether dbt ran."""
        ran, code = self._ewh(*args, as_of=as_of, env=env)
        assert code == 0, self.last_output[-4000:]
        return ran

    def _ewh(self, *args: str, as_of: str | None = AS_OF,
             env: dict[str, str] | None = None) -> tuple[bool, int]:
        before = self.invocation()
        vars_args = ("--vars", json.dumps({"as_of": as_of})) if as_of else ()
        command = [str(Path(sys.executable).with_name("ewh")), "build", *SELECT, *vars_args,
                   "--target-path", str(self.work / "target"),
                   "--log-path", str(self.work / "logs"), *args]
        env = {**os.environ, "EWH_WAREHOUSE": str(self.warehouse), "EWH_DBT_TARGET": "duckdb",
               **(env or {})}
        proc = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
        self.last_output = proc.stdout + proc.stderr
        ran = self.invocation() != before
        # what it prints agrees with what dbt did
        assert ("ewh build: skipped" in proc.stdout) == (not ran), self.last_output[-4000:]
        return ran, proc.returncode


@pytest.fixture()
def builds(tmp_path: Path) -> Builds:
    warehouse = tmp_path / "warehouse.duckdb"
    _insert(warehouse, 0, 6)
    return Builds(warehouse, tmp_path / "dbt")


def test_a_build_is_skipped_exactly_when_nothing_it_reads_changed(builds: Builds) -> None:
    w = builds.warehouse
    assert builds.ewh_build()  # first build
    assert _sql(w, "select count(*) from staging.stg_events") == [(6,)]
    assert not builds.ewh_build()  # nothing changed

    _insert(w, 6, 2)  # a load appends
    assert builds.ewh_build()
    assert _sql(w, "select count(*) from staging.stg_events") == [(8,)]
    assert not builds.ewh_build()

    # an update in place (re-keying rewrites payloads), same row count
    _sql(w, "update raw.events set payload = replace(payload, 'p1', 'p2') where message_id = 'm0'")
    assert builds.ewh_build()
    assert not builds.ewh_build()

    _sql(w, "delete from raw.events where message_id = 'm7'")  # an erasure deletes
    assert builds.ewh_build()
    assert not builds.ewh_build()
    # another raw table than the sources (what the reconciliation tests read)
    _sql(w, "insert into raw.events_rejected (source, line_number, reason, detail, raw_text, "
            "load_id, rejected_at) values ('test', 1, 'bad', 'bad', '{}', 'l', now())")
    assert builds.ewh_build()
    assert not builds.ewh_build()

    assert builds.ewh_build(as_of=LATER)  # another as_of: every window moves
    assert builds.ewh_build()  # back: the key is the later build's now
    assert not builds.ewh_build()


def test_any_other_dbt_invocation_or_a_dropped_table_makes_the_next_build_run(
        builds: Builds, tmp_path: Path) -> None:
    w = builds.warehouse
    assert builds.ewh_build()
    assert not builds.ewh_build()

    # plain dbt in between (it may have changed tables: here the same model, same as_of)
    plain = dbt_command(w, tmp_path / "plain", "run", "--select", "stg_events",
                        "--vars", json.dumps({"as_of": AS_OF}))
    assert plain.returncode == 0, plain.stdout[-3000:]
    assert recorded_key(w) is None  # the plain run's hook took the key away
    assert builds.ewh_build()
    assert not builds.ewh_build()

    _sql(w, "drop table staging.stg_events")
    assert builds.ewh_build()
    assert _sql(w, "select count(*) from staging.stg_events") == [(6,)]

    # a build that fails after it wrote: a message type stg_events' test refuses
    _insert(w, 100, 1, message_type="bogus")
    ran, code = builds._ewh()
    assert ran and code != 0
    # raw as before the failure, the tables not: stg_events kept the bad row. So it runs, and
    # fails again on that row (a skip would have reported success over it) until a full refresh
    _sql(w, "delete from raw.events where message_id = 'm100'")
    ran, code = builds._ewh()
    assert ran and code != 0
    assert builds.ewh_build("--full-refresh")
    assert _sql(w, "select count(*) from staging.stg_events where message_type = 'bogus'") == [(0,)]
    assert not builds.ewh_build()


def test_a_full_refresh_always_builds_and_records_and_an_unpinned_as_of_never_skips(
        builds: Builds) -> None:
    assert builds.ewh_build("--full-refresh")
    assert builds.ewh_build("--full-refresh")
    assert not builds.ewh_build()  # its tables equal an incremental build's
    assert builds.ewh_build(as_of=None)
    assert "as_of is not pinned" in builds.last_output
    assert builds.ewh_build(as_of=None)
    assert builds.ewh_build()
    assert builds.ewh_build("-f")  # the short flag is a full refresh too
    assert not builds.ewh_build()


def test_dbt_settings_from_the_environment_are_inputs_too(builds: Builds) -> None:
    assert builds.ewh_build()
    # DBT_EMPTY reads no rows (an empty build): not the same build as without it, either way
    assert builds.ewh_build(env={"DBT_EMPTY": "1"})
    assert builds.ewh_build()
    assert not builds.ewh_build()
    assert builds.ewh_build(env={"DBT_FULL_REFRESH": "true"})
    # how dbt reports is not an input
    assert not builds.ewh_build(env={"DBT_LOG_LEVEL": "warn", "DBT_USE_COLORS": "false"})


def test_a_key_is_recorded_only_for_the_invocation_that_started_last(tmp_path: Path) -> None:
    """record_key is a compare-and-set on the pending row the on-run-start hook writes."""
    warehouse = tmp_path / "w.duckdb"
    relation = ".".join(STATE_TABLE)
    _sql(warehouse, f"create schema {STATE_TABLE[0]}; create table {relation} "
                    "(model_name varchar, fingerprint varchar)")
    _sql(warehouse, f"insert into {relation} values ('{BUILD_ENTRY}', 'pending:second')")
    assert not record_key(warehouse, "a" * 64, "first")  # another run started after it
    assert recorded_key(warehouse) is None
    assert record_key(warehouse, "a" * 64, "second")
    assert recorded_key(warehouse) == "a" * 64


def test_the_key_covers_the_code_and_the_command_line_but_not_dbt_s_own_folders(
        tmp_path: Path) -> None:
    project = tmp_path / "project"
    (project / "models").mkdir(parents=True)
    (project / "models" / "a.sql").write_text("select 1")
    (project / "dbt_project.yml").write_text("name: x")
    first = _code_digest(project)
    (project / "models" / "a.sql").write_text("select 2")
    assert _code_digest(project) != first
    (project / "models" / "a.sql").write_text("select 1")
    assert _code_digest(project) == first
    (project / "models" / "b.sql").write_text("select 1")
    assert _code_digest(project) != first

    base = ["--select", "x", "--vars", '{"as_of": "2026-11-01"}']
    assert _build_args([*base, "--target-path", "/a", "--log-path", "/b"]) == _build_args(base)
    assert _build_args([*base, "--full-refresh"]) == _build_args(base)
    assert _build_args(["--select", "x", "--vars", "{as_of: '2026-11-01'}"]) == _build_args(base)
    assert _build_args(["--select", "y", *base[2:]]) != _build_args(base)
    assert _build_args([*base[:2], "--vars", '{"as_of": "2026-11-02"}']) != _build_args(base)
    # --vars=... is the same as --vars ..., and the last --vars wins, as in dbt
    assert _build_args(["--select", "x", '--vars={"as_of": "2026-11-01"}']) == _build_args(base)
    assert _build_args([*base, "--vars", '{"as_of": "2026-11-02"}']) != _build_args(base)
    assert _build_args([*base[:2], "--vars", "{}", *base[2:]]) == _build_args(base)


def test_option_values_are_read_as_dbt_reads_them() -> None:
    args = ["--target", "a", "-t", "b", "--profiles-dir=/p", "--select", "--target-path"]
    assert option_value(args, "--target", "-t") == "b"  # the last one wins
    assert option_value(args, "--profiles-dir") == "/p"
    assert option_value(args, "--target-path") is None  # no value after it
    assert option_value(args, "--log-path") is None
    assert option_value(["--vars", "{a: 1}"], "--vars") == "{a: 1}"
    assert option_value(["-tspark"], "--target", "-t") == "spark"  # click reads -tVALUE too
    assert option_value(["--target", "duckdb", "-tspark"], "--target", "-t") == "spark"
