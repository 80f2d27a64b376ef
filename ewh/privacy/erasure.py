"""Erase a person (right to be forgotten) so that no trace is left and nothing brings them back.

`erase_user(user_id)` (the `ewh erase` command, `DELETE /api/users/{userId}`), in order:
1. the identity graph: the userId, the userIds aliased to it, the anonymous ids of their
   events and their user_keys (intermediate.int_identity_map when built);
2. their emails, decrypted while their data keys still exist (to find them in files);
3. the landing zone: every line naming them removed from line files (rewritten 0600), other
   files holding them shredded; raw.load_manifest follows the rewritten files;
4. the warehouse, in one transaction: their rows in every schema (raw, their prediction
   scores in raw.prediction_scores, and every derived table with an identity column); then
   the file is compacted (ewh.privacy.compact) so the ids are gone from its bytes too;
5. the serving copy and the exports, at once: rows deleted and the file compacted; export
   files rewritten without them, and each destination's `deletions` file lists them once;
6. Parquet files: the raw lake the Spark target reads (EWH_LAKE_DIR) and the Spark target's
   tables (EWH_SPARK_WAREHOUSE), each file with their rows rewritten without them
   (ewh.privacy.parquet_scrub);
7. Dagster's storage (DAGSTER_HOME): their ids replaced in run and event records (SQLite,
   vacuumed) and logs; the Great Expectations project: the stored validation results that
   sample their ids rewritten, those runs' Data Docs pages rendered again
   (ewh.privacy.gx_scrub);
8. their data keys destroyed (crypto-shredding: any other copy of their encrypted fields,
   a backup or a copied warehouse, is unreadable), and their ids added to the suppression
   list as keyed hashes, so later events for them are dropped at load (`suppressed`);
9. a verification scan of every table and every file touched, and a JSON receipt.
Trained models hold no rows of anyone; the scratch warehouse a training run copies events
into lives only during that run, and a leftover one (a run that crashed) is removed first.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import re
import shutil
import sqlite3
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import duckdb

from ewh.activation.state import scrub_person
from ewh.common.clock import utc_now
from ewh.common.duckdb_tables import has_table
from ewh.common.settings import Settings, get_settings
from ewh.common.sql_text import quote_ident, sql_literal
from ewh.contract import json_text
from ewh.ingest.raw_tables import ensure_raw_tables
from ewh.predictions.snapshots import training_work_dir
from ewh.privacy.compact import compact
from ewh.privacy.files import private_dir, tighten, write_private
from ewh.privacy.gx_scrub import gx_data_files, gx_folder, scrub_gx, spellings
from ewh.privacy.keys import DataKeys, PrivacyKeys, SuppressionList
from ewh.privacy.parquet_scrub import parquet_files, parquet_hits, scrub_parquet
from ewh.privacy.scan import files_in, needle_pattern, scan_bytes, scan_tables
from ewh.privacy.scrub import (
    ScrubReport,
    line_matcher,
    needles_of,
    reconcile_manifest,
    scrub_files,
    shred,
)

# Columns that name a person; a table with one of them loses the person's rows.
IDENTITY_COLUMN = re.compile(r"^(user_key|user_id|anonymous_id|device_id|previous_id|"
                             r"own_user_id|.*_user_(id|key)|member_ref)$")
EXPORT_STEMS = ("members", "entered", "exited")
ERASED = "[erased]"

ERASURES_DDL = """
create table if not exists raw.erasures (
    erasure_id      varchar not null,   -- the receipt's id
    subject_hash    varchar not null,   -- keyed hash of the userId (the suppression list's)
    ids_erased      bigint not null,    -- userIds and anonymous ids in the identity graph
    rows_deleted    bigint not null,    -- in the warehouse, every schema
    erased_at       timestamp not null
)
"""


class UnknownUser(LookupError):
    """No row in any layer names the userId: nothing was erased (nor recorded)."""


@dataclass
class Identity:
    user_ids: set[str]
    anonymous_ids: set[str]
    user_keys: set[str]
    emails: set[str] = field(default_factory=set)
    email_digests: set[str] = field(default_factory=set)  # keyed HMAC and SHA-256 of each

    @property
    def ids(self) -> set[str]:
        return self.user_ids | self.anonymous_ids

    @property
    def keys(self) -> set[str]:
        """Every value an identity column may hold for them."""
        return self.ids | self.user_keys | {f"anonymous:{a}" for a in self.anonymous_ids}

    @property
    def gx_needles(self) -> set[str]:
        """What a GX sample of theirs may hold: an identity column's value, an email or its
        digest (looked for in the GX project only: exports' `deletions` list the SHA-256)."""
        return self.keys | self.emails | self.email_digests


@dataclass
class ErasureResult:
    """What was erased; `receipt` is what the JSON receipt holds (no id in the clear)."""

    user_id: str
    identity: Identity
    receipt: dict[str, Any]
    receipt_path: Path

    @property
    def clean(self) -> bool:
        return bool(self.receipt["verification"]["clean"])


def _identity(con: duckdb.DuckDBPyConnection, user_id: str) -> Identity:
    user_ids = {user_id}
    user_keys: set[str] = set()
    anonymous: set[str] = set()
    for _ in range(3):  # aliases of aliases: a few rounds reach every linked userId
        listed = list(user_ids)
        for (previous,) in con.execute(
                "select distinct try(json_extract_string(payload, '$.previousId')) "
                "from raw.events where message_type = 'alias' and list_contains(?, user_id)",
                [listed]).fetchall():
            if previous:
                user_ids.add(previous)
        if has_table(con, "intermediate", "int_identity_map"):
            for key, uid, anon in con.execute(
                    "select user_key, user_id, anonymous_id from intermediate.int_identity_map "
                    "where user_key in (select user_key from intermediate.int_identity_map "
                    "where list_contains(?, user_id))", [listed]).fetchall():
                user_keys.add(key)
                if uid:
                    user_ids.add(uid)
                if anon:
                    anonymous.add(anon)
    anonymous |= {a for (a,) in con.execute(
        "select distinct anonymous_id from raw.events where list_contains(?, user_id) "
        "and anonymous_id is not null", [list(user_ids)]).fetchall()}
    user_keys |= user_ids
    return Identity(user_ids, anonymous, user_keys)


def _emails(con: duckdb.DuckDBPyConnection, identity: Identity, data_keys: DataKeys) -> set[str]:
    """Their addresses, decrypted from their events before their keys are destroyed."""
    found: set[str] = set()
    rows = con.execute(
        "select coalesce(user_id, anonymous_id), payload from raw.events "
        "where (list_contains(?, user_id) or list_contains(?, anonymous_id)) "
        "and payload like '%email_encrypted%'",
        [sorted(identity.user_ids), sorted(identity.anonymous_ids)]).fetchall()
    for subject, payload in rows:
        try:
            message = json_text.loads(payload)
        except ValueError:
            continue
        for holder in (message.get("traits"), (message.get("context") or {}).get("traits"),
                       message.get("properties")):
            if isinstance(holder, dict) and isinstance(holder.get("email_encrypted"), str):
                email = data_keys.decrypt(subject, holder["email_encrypted"])
                if email:
                    found.add(email)
    return found


def _email_digests(emails: set[str], keys: PrivacyKeys) -> set[str]:
    """The pseudonym stg_events keeps (email_hash) and the exports' SHA-256, of each email."""
    normal = {e.strip().lower() for e in emails}
    return ({keys.pseudonym("email", e) for e in normal}
            | {hashlib.sha256(e.encode()).hexdigest() for e in normal})


def _identity_tables(con: duckdb.DuckDBPyConnection,
                     skip: tuple[str, ...] = ()) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for schema, table, column in con.execute(
        "select c.table_schema, c.table_name, c.column_name from information_schema.columns c "
        "join information_schema.tables t using (table_catalog, table_schema, table_name) "
        "where t.table_type = 'BASE TABLE' order by 1, 2, 3"
    ).fetchall():
        name = f"{schema}.{table}"
        if name in skip or not IDENTITY_COLUMN.match(column):
            continue
        found.setdefault(f"{quote_ident(schema)}.{quote_ident(table)}", []).append(column)
    return found


def delete_rows(con: duckdb.DuckDBPyConnection, identity: Identity,
                skip: tuple[str, ...] = ()) -> dict[str, int]:
    """Delete their rows from every table with an identity column; table -> rows deleted."""
    keys = sorted(identity.keys)
    deleted: dict[str, int] = {}
    for table, columns in _identity_tables(con, skip).items():
        condition = " or ".join(f"list_contains(?, {quote_ident(c)}::varchar)" for c in columns)
        rows = con.execute(f"delete from {table} where {condition}",
                           [keys] * len(columns)).fetchone()[0]
        if rows:
            deleted[table.replace('"', "")] = int(rows)
    return deleted


def _delete_raw(con: duckdb.DuckDBPyConnection, identity: Identity) -> dict[str, int]:
    ids = sorted(identity.ids)
    deleted: dict[str, int] = {}
    rows = con.execute(
        "delete from raw.events where list_contains(?, user_id) or list_contains(?, "
        "anonymous_id) or list_contains(?, try(json_extract_string(payload, '$.previousId')))",
        [sorted(identity.user_ids), sorted(identity.anonymous_ids), ids]).fetchone()[0]
    deleted["raw.events"] = int(rows)
    pattern = needle_pattern(identity.ids | identity.emails)
    texts = con.execute("select rowid, raw_text from raw.events_rejected").fetchall()
    doomed = [rowid for rowid, text in texts
              if pattern is not None and pattern.search(str(text).encode())]
    if doomed:
        con.execute("delete from raw.events_rejected where list_contains(?, rowid)", [doomed])
    deleted["raw.events_rejected"] = len(doomed)
    return {k: v for k, v in deleted.items() if v}


def _live_writer(path: Path) -> bool:
    """A landing file whose flock is held is being written by a collector: left alone."""
    if not path.name.endswith(".open"):
        return False
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        return True
    finally:
        os.close(fd)
    return False


def _scrub_landing(landing: Path, identity: Identity) -> tuple[ScrubReport, list[str]]:
    needles = needles_of(identity.ids, identity.emails)
    files = files_in(landing)
    busy = [str(p) for p in files if _live_writer(p)]
    report = scrub_files([p for p in files if str(p) not in busy], line_matcher(needles),
                         needles)
    return report, busy


def _scrub_exports(exports: Path, identity: Identity, keys: PrivacyKeys,
                   erased_at: datetime) -> dict[str, Any]:
    """Export files without them; `deletions` lists them once per destination."""
    from ewh.segments.exports import csv_safe

    touched: dict[str, Any] = {}
    refs = {keys.pseudonym("member", k) for k in identity.keys}
    email_hashes = sorted({hashlib.sha256(e.strip().lower().encode()).hexdigest()
                           for e in identity.emails})
    if not exports.exists():
        return touched
    for folder in sorted(p for p in exports.iterdir() if p.is_dir()):
        member_refs: set[str] = set()
        with duckdb.connect(":memory:") as con:
            for stem in EXPORT_STEMS:
                parquet = folder / f"{stem}.parquet"
                if not parquet.exists():
                    continue
                source = f"read_parquet({sql_literal(str(parquet))})"
                columns = [d[0] for d in con.execute(f"select * from {source} limit 0")
                           .description]
                tests = [f"list_contains($keys, {quote_ident(c)}::varchar)"
                         for c in columns if IDENTITY_COLUMN.match(c) and c != "member_ref"]
                if "member_ref" in columns:
                    tests.append("list_contains($refs, member_ref)")
                if not tests:
                    continue
                hit = " or ".join(tests)
                params = {"keys": sorted(identity.keys), "refs": sorted(refs)}
                found = con.execute(f"select count(*) from {source} where {hit}",
                                    params).fetchone()[0]
                if not found:
                    continue
                # whoever a destination received, in any file, is theirs to delete
                if "member_ref" in columns:
                    member_refs |= refs & {r for (r,) in con.execute(
                        f"select member_ref from {source} where {hit}", params).fetchall()}
                else:
                    member_refs |= {keys.pseudonym("member", k) for k in identity.user_keys}
                kept = f"select * from {source} where not ({hit})"
                partial = folder / f".{stem}.parquet.partial"
                con.execute(f"copy ({kept}) to {sql_literal(str(partial))} (format parquet)",
                            params)
                csv_partial = folder / f".{stem}.csv.partial"
                rewritten = f"select * from read_parquet({sql_literal(str(partial))})"
                con.execute(f"copy ({csv_safe(con, rewritten)}) "
                            f"to {sql_literal(str(csv_partial))} (format csv, header true)")
                for path in (parquet, folder / f"{stem}.csv"):
                    if path.exists():
                        shred(path)
                os.replace(partial, parquet)
                os.replace(csv_partial, folder / f"{stem}.csv")
                touched[f"{folder.name}/{stem}"] = int(found)
        if member_refs:
            touched[f"{folder.name}/deletions"] = _append_deletions(
                folder, sorted(member_refs), email_hashes, erased_at)
        tighten(folder)
    return touched


def _append_deletions(folder: Path, refs: list[str], email_hashes: list[str],
                      erased_at: datetime) -> int:
    """deletions.parquet|csv: one row per erased member (member_ref, email_sha256s)."""
    parquet = folder / "deletions.parquet"
    with duckdb.connect(":memory:") as con:
        con.execute("create table deletions (member_ref varchar, email_sha256 varchar, "
                    "erased_at timestamp)")
        if parquet.exists():
            con.execute(f"insert into deletions select member_ref, email_sha256, erased_at "
                        f"from read_parquet({sql_literal(str(parquet))})")
        known = {r for (r,) in con.execute("select member_ref from deletions").fetchall()}
        new = [[ref, email, erased_at] for ref in refs if ref not in known
               for email in (email_hashes or [None])]
        if new:
            con.executemany("insert into deletions values (?, ?, ?)", new)
        for suffix, options in (("parquet", "format parquet"), ("csv", "format csv, header true")):
            partial = folder / f".deletions.{suffix}.partial"
            con.execute(f"copy (select * from deletions order by erased_at, member_ref) to "
                        f"{sql_literal(str(partial))} ({options})")
            os.replace(partial, folder / f"deletions.{suffix}")
    return len(new)


def _serving_catalog_counts(con: duckdb.DuckDBPyConnection) -> None:
    if not has_table(con, "segments", "segment_catalog"):
        return
    for (segment,) in con.execute("select segment from segments.segment_catalog").fetchall():
        if has_table(con, "segments", segment):
            con.execute(f"update segments.segment_catalog set members = (select count(*) from "
                        f"segments.{quote_ident(segment)}) where segment = ?", [segment])


def scrub_dagster(home: Path | None, identity: Identity) -> dict[str, int]:
    """Replace their ids and emails in Dagster's storage: SQLite records (then vacuumed),
    text logs; any other file holding them is shredded. path -> values changed."""
    pattern = needle_pattern(identity.ids | identity.emails)
    touched: dict[str, int] = {}
    if home is None or pattern is None or not home.exists():
        return touched
    text_pattern = re.compile(pattern.pattern.decode(), re.IGNORECASE)
    for path in files_in(home):
        if path.name.endswith(("-wal", "-shm", "-journal")):
            continue
        head = path.read_bytes()[:16]
        if head.startswith(b"SQLite format 3"):
            changed = _scrub_sqlite(path, text_pattern)
        else:
            data = path.read_bytes()
            if not pattern.search(data):
                continue
            try:
                text = data.decode()
            except UnicodeDecodeError:
                shred(path)
                touched[str(path)] = -1
                continue
            new, changed = text_pattern.subn(ERASED, text)
            write_private(path, new.encode())
        if changed:
            touched[str(path)] = changed
    return touched


def _scrub_sqlite(path: Path, pattern: re.Pattern[str]) -> int:
    changed = 0
    con = sqlite3.connect(str(path), timeout=30)
    try:
        con.create_function("ewh_hit", 1, lambda v: 1 if isinstance(v, str)
                            and pattern.search(v) else 0, deterministic=True)
        con.create_function("ewh_erase", 1, lambda v: pattern.sub(ERASED, v)
                            if isinstance(v, str) else v, deterministic=True)
        tables = [t for (t,) in con.execute(
            "select name from sqlite_master where type = 'table' "
            "and name not like 'sqlite_%'").fetchall()]
        for table in tables:
            columns = [row[1] for row in con.execute(f'pragma table_info("{table}")')]
            for column in columns:
                cursor = con.execute(f'update "{table}" set "{column}" = ewh_erase("{column}") '
                                     f'where ewh_hit("{column}")')
                changed += max(cursor.rowcount, 0)
        con.commit()
        if changed:
            con.execute("vacuum")
        if con.execute("pragma journal_mode").fetchone()[0] == "wal":
            con.execute("pragma wal_checkpoint(truncate)")
    finally:
        con.close()
    return changed


def erase_user(user_id: str, settings: Settings | None = None, *,
               warehouse: Path | None = None, dagster_home: Path | None = None,
               keys: PrivacyKeys | None = None) -> ErasureResult:
    """Erase the person with this userId everywhere (see the module doc)."""
    settings = settings or get_settings()
    warehouse = warehouse or settings.warehouse
    keys = keys or PrivacyKeys.from_settings(settings)
    if dagster_home is None and os.environ.get("DAGSTER_HOME"):
        dagster_home = Path(os.environ["DAGSTER_HOME"])
    data_keys = DataKeys(keys)
    suppression = SuppressionList(keys)
    requested_at = utc_now()
    erasure_id = uuid.uuid4().hex
    receipt: dict[str, Any] = {"erasure_id": erasure_id, "requested_at": requested_at.isoformat(),
                               "subject_hash": keys.suppression_hash(user_id)}
    shutil.rmtree(training_work_dir(settings.models_dir), ignore_errors=True)

    with duckdb.connect(str(warehouse)) as con:
        ensure_raw_tables(con)
        _upgrade_erasures(con)
        identity = _identity(con, user_id)
        identity.emails = _emails(con, identity, data_keys)
        identity.email_digests = _email_digests(identity.emails, keys)
        known = con.execute(
            "select count(*) from raw.events where list_contains(?, user_id)",
            [sorted(identity.user_ids)]).fetchone()[0]
        if not known and not delete_rows_count(con, identity):
            if suppression.contains(user_id):
                raise UnknownUser(f"userId {user_id!r} was already erased: nothing to erase")
            raise UnknownUser(f"no userId {user_id!r} in {warehouse}: nothing erased")
        landing, busy = _scrub_landing(settings.landing_dir, identity)
        con.execute("begin transaction")
        deleted = _delete_raw(con, identity)
        deleted |= delete_rows(con, identity, skip=("raw.events", "raw.events_rejected",
                                                    "raw.erasures"))
        reconcile_manifest(con, landing)
        con.execute("insert into raw.erasures values (?, ?, ?, ?, ?)",
                    [erasure_id, receipt["subject_hash"], len(identity.ids),
                     sum(deleted.values()), requested_at])
        con.execute("commit")
    compacted = {str(warehouse): compact(warehouse)}

    serving_deleted: dict[str, int] = {}
    if settings.serving.exists():
        with duckdb.connect(str(settings.serving)) as con:
            serving_deleted = delete_rows(con, identity)
            _serving_catalog_counts(con)
        compacted[str(settings.serving)] = compact(settings.serving, wipe_old=False)
    exports = _scrub_exports(settings.exports_dir, identity, keys, requested_at)
    parquet = scrub_parquet(parquet_files(settings.lake_dir, settings.spark_warehouse),
                            user_ids=identity.user_ids, anonymous_ids=identity.anonymous_ids,
                            keys=identity.keys, identity_column=IDENTITY_COLUMN)
    dagster = scrub_dagster(dagster_home, identity)
    gx = scrub_gx(gx_folder(settings), identity.gx_needles)
    webhooks = scrub_person(settings.webhook_state, identity.ids, identity.keys)

    destroyed = sum(data_keys.destroy(s) for s in sorted(identity.ids))
    suppression.add(sorted(identity.ids))

    receipt.update({
        "completed_at": utc_now().isoformat(),
        "ids_erased": {"user_ids": len(identity.user_ids),
                       "anonymous_ids": len(identity.anonymous_ids)},
        "suppressed_hashes": len(identity.ids),
        "data_keys_destroyed": destroyed,
        "tables": {"warehouse": deleted, "serving": serving_deleted},
        "files": {"landing_rewritten": landing.rewritten, "landing_shredded": landing.shredded,
                  "landing_skipped_being_written": busy, "exports": exports,
                  "parquet_rows_removed": parquet, "dagster": dagster, "gx": gx,
                  "webhook_bodies": webhooks},
        "compacted": {path: {"bytes_before": b, "bytes_after": a}
                      for path, (b, a) in compacted.items()},
    })
    receipt["verification"] = verify(identity, settings, dagster_home)
    receipts = private_dir(settings.erasure_receipts)
    path = receipts / f"{requested_at:%Y%m%dT%H%M%S}-{erasure_id}.json"
    write_private(path, json.dumps(receipt, indent=2, sort_keys=True).encode())
    return ErasureResult(user_id, identity, receipt, path)


def delete_rows_count(con: duckdb.DuckDBPyConnection, identity: Identity) -> int:
    """How many rows of derived tables name them (without deleting)."""
    keys = sorted(identity.keys)
    total = 0
    for table, columns in _identity_tables(con, skip=("raw.erasures",)).items():
        condition = " or ".join(f"list_contains(?, {quote_ident(c)}::varchar)" for c in columns)
        total += con.execute(f"select count(*) from {table} where {condition}",
                             [keys] * len(columns)).fetchone()[0]
    return int(total)


def _upgrade_erasures(con: duckdb.DuckDBPyConnection) -> None:
    """An older raw.erasures kept a plain SHA-256 of the userId, which anyone can recompute:
    it is dropped (its rows cannot be turned into keyed hashes)."""
    if has_table(con, "raw", "erasures"):
        columns = {c for (c,) in con.execute(
            "select column_name from information_schema.columns where table_schema = 'raw' "
            "and table_name = 'erasures'").fetchall()}
        if "user_id_sha256" in columns:
            con.execute("drop table raw.erasures")
    con.execute(ERASURES_DDL)


def verify(identity: Identity, settings: Settings, dagster_home: Path | None) -> dict[str, Any]:
    """Every table of the DuckDB files and the bytes of every file we keep, for their ids
    and emails (in the GX project also every user_key, email digest and JSON or HTML
    spelling of them): where any is still found (hit counts; never the needle itself)."""
    needles = sorted(identity.ids | identity.emails)
    tables: dict[str, dict[str, int]] = {}
    gx_files = gx_data_files(gx_folder(settings))
    data_files = files_in(settings.warehouse.parent, settings.landing_dir, settings.exports_dir,
                          settings.serving, dagster_home)
    for path in sorted({settings.warehouse, settings.serving,
                        *(p for p in data_files if p.suffix == ".duckdb")}):
        found = scan_tables(path, needles)
        if found:
            tables[str(path)] = found
    in_gx = set(gx_files)
    files = scan_bytes([p for p in data_files if p not in in_gx], needles)
    files |= scan_bytes(gx_files, sorted(spellings(identity.gx_needles)))
    files |= parquet_hits(parquet_files(settings.lake_dir, settings.spark_warehouse), needles)
    return {"needles": len(needles), "files_scanned": len(in_gx | set(data_files)),
            "table_hits": tables, "file_hits": files, "clean": not tables and not files}
