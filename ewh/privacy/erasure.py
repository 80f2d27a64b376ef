"""Erase a user (right to be forgotten): every row that identifies them, in every layer.

The user's events are deleted from raw (with the anonymous ids their events link to them),
and so are their prediction scores (raw.prediction_scores); matching rows are deleted at once
from every derived table that carries an identity column, including incremental ones such as
membership history that a rebuild would keep. Trained models hold no rows of anyone; the
scratch warehouse a training run copies events into lives only during that run, and a
leftover one (a run that crashed) is removed too.
A row in `raw.erasures` records that it happened, holding only a hash of the userId.
"""

from __future__ import annotations

import hashlib
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import duckdb

from ewh.common.clock import utc_now
from ewh.common.sql_text import quote_ident, sql_literal
from ewh.ingest.raw_tables import ensure_raw_tables
from ewh.predictions.snapshots import training_work_dir

DERIVED_SCHEMAS = ("staging", "intermediate", "marts", "segments")
IDENTITY_COLUMNS = ("user_key", "user_id", "anonymous_id", "device_id", "previous_id")

ERASURES_DDL = """
create table if not exists raw.erasures (
    user_id_sha256  varchar not null,
    anonymous_ids   bigint not null,
    raw_events      bigint not null,
    rejected_rows   bigint not null,
    derived_rows    bigint not null,
    erased_at       timestamp not null
)
"""


class UnknownUser(LookupError):
    """No row in any layer names the userId: nothing was erased (nor recorded)."""


@dataclass(frozen=True)
class ErasureResult:
    user_id: str
    anonymous_ids: list[str]
    raw_events: int
    rejected_rows: int
    derived_rows: dict[str, int] = field(default_factory=dict)


def _identities(con: duckdb.DuckDBPyConnection, user_id: str) -> list[str]:
    rows = con.execute(
        "select distinct anonymous_id from raw.events "
        "where user_id = ? and anonymous_id is not null order by 1", [user_id]).fetchall()
    return [r[0] for r in rows]


def _derived_tables(con: duckdb.DuckDBPyConnection) -> dict[str, list[str]]:
    schemas = ", ".join(sql_literal(s) for s in DERIVED_SCHEMAS)
    columns = ", ".join(sql_literal(c) for c in IDENTITY_COLUMNS)
    found: dict[str, list[str]] = {}
    for schema, table, column in con.execute(
        "select c.table_schema, c.table_name, c.column_name from information_schema.columns c "
        "join information_schema.tables t using (table_catalog, table_schema, table_name) "
        f"where t.table_type = 'BASE TABLE' and c.table_schema in ({schemas}) "
        f"and c.column_name in ({columns}) order by 1, 2, 3"
    ).fetchall():
        found.setdefault(f"{quote_ident(schema)}.{quote_ident(table)}", []).append(column)
    return found


def erase_user(warehouse: Path, user_id: str, models_dir: Path | None = None) -> ErasureResult:
    """Delete the user everywhere in one transaction; returns what was deleted. `models_dir`
    (the model registry): also remove a leftover training scratch warehouse."""
    if models_dir is not None:
        shutil.rmtree(training_work_dir(models_dir), ignore_errors=True)
    with duckdb.connect(str(warehouse)) as con:
        ensure_raw_tables(con)
        con.execute(ERASURES_DDL)
        con.execute("begin transaction")
        anonymous = _identities(con, user_id)
        ids = [user_id, *anonymous]
        raw_events = con.execute(
            "delete from raw.events where user_id = ? or list_contains(?, anonymous_id)",
            [user_id, anonymous]).fetchone()[0]
        scores = con.execute(
            "delete from raw.prediction_scores where list_contains(?, user_key) "
            "or list_contains(?, user_id)", [ids, ids]).fetchone()[0]
        rejected = con.execute(
            "delete from raw.events_rejected where "
            "try(json_extract_string(raw_text, '$.userId')) = ? or "
            "list_contains(?, try(json_extract_string(raw_text, '$.anonymousId')))",
            [user_id, anonymous]).fetchone()[0]
        derived: dict[str, int] = {}
        for table, columns in _derived_tables(con).items():
            condition = " or ".join(f"list_contains(?, {c}::varchar)" for c in columns)
            deleted = con.execute(f"delete from {table} where {condition}",
                                  [ids] * len(columns)).fetchone()[0]
            if deleted:
                derived[table] = int(deleted)
        if scores:
            derived["raw.prediction_scores"] = int(scores)
        if not raw_events and not rejected and not derived:
            con.execute("rollback")
            digest = hashlib.sha256(user_id.encode()).hexdigest()
            erased = con.execute("select max(erased_at) from raw.erasures "
                                 "where user_id_sha256 = ?", [digest]).fetchone()[0]
            before = f" (it was erased at {erased})" if erased else ""
            raise UnknownUser(f"no userId {user_id!r} in {warehouse}: nothing erased{before}")
        con.execute(
            "insert into raw.erasures values (?, ?, ?, ?, ?, ?)",
            [hashlib.sha256(user_id.encode()).hexdigest(), len(anonymous), raw_events,
             rejected, sum(derived.values()), utc_now()])
        con.execute("commit")
    return ErasureResult(user_id, anonymous, int(raw_events), int(rejected), derived)
