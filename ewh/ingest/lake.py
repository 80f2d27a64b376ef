"""Publish the accepted raw rows as Parquet files, for engines that read a lake (Spark).

Layout: `<lake_dir>/raw/events/load_date=YYYY-MM-DD/<load_id>.parquet`, one file per load (a
load is one landing file), partitioned by the UTC date of `loaded_at`; the columns are those of
raw.events plus nothing else (load_date is the folder). Timestamps are written adjusted to UTC
(Parquet isAdjustedToUTC): Spark reads them as TIMESTAMP instants, not TIMESTAMP_NTZ.

Exactly once, reconciled by raw.load_manifest: a load's file name is its load_id, so a load is
published at most once; publishing writes every load of the manifest that has rows and no file
yet, so a crash between the warehouse commit and the publication is repaired by the next run.
Each file is written under a temporary name, fsync'ed and renamed into place (atomic on one
file system): a reader never sees half a file. Loaders on several machines writing to object
storage keep the same rule: the name is the load_id, and the rename is the object store's
atomic put of a finished object.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

from ewh.common.sql_text import sql_literal
from ewh.privacy.files import fsync_path

EVENTS_DIR = Path("raw") / "events"
SCORES_FILE = Path("raw") / "prediction_scores" / "scores.parquet"
BATCH_ROWS = 65_536
# raw.events as published, in order (ewh/ingest/raw_tables.py).
EVENT_COLUMNS = ("message_id", "message_type", "event_name", "user_id", "anonymous_id",
                 "occurred_at", "sent_at", "received_at", "payload", "source", "file_checksum",
                 "load_id", "loaded_at")
TIMESTAMP_COLUMNS = frozenset({"occurred_at", "sent_at", "received_at", "loaded_at", "as_of",
                               "scored_at"})
UTC_TIMESTAMP = pa.timestamp("us", tz="UTC")


@dataclass(frozen=True, slots=True)
class LakeLoad:
    """One load as the manifest and the lake see it."""

    load_id: str
    load_date: str
    rows_in_manifest: int
    rows_in_lake: int | None  # None: no file yet

    @property
    def reconciles(self) -> bool:
        return self.rows_in_lake == self.rows_in_manifest


def events_file(lake_dir: Path, load_id: str, load_date: str) -> Path:
    return lake_dir / EVENTS_DIR / f"load_date={load_date}" / f"{load_id}.parquet"


def publish_loads(con: duckdb.DuckDBPyConnection, lake_dir: Path) -> list[LakeLoad]:
    """Write the file of every load in the manifest that has rows and no file; the loads written.

    Reads the warehouse on `con` (committed rows only: call it after the load's commit).
    """
    published = []
    for load in lake_loads(con, lake_dir):
        if load.rows_in_lake is None and load.rows_in_manifest > 0:
            rows = _write_load(con, lake_dir, load.load_id, load.load_date)
            published.append(LakeLoad(load.load_id, load.load_date, load.rows_in_manifest, rows))
    return published


def publish_prediction_scores(con: duckdb.DuckDBPyConnection, lake_dir: Path) -> int:
    """raw.prediction_scores as one Parquet file, replaced whole as the table is at each
    scoring (atomically, like a load's file); the rows written."""
    target = lake_dir / SCORES_FILE
    return _write_atomically(con.sql("select * from raw.prediction_scores "
                                     "order by model_name, user_key"), target)


def lake_loads(con: duckdb.DuckDBPyConnection, lake_dir: Path) -> list[LakeLoad]:
    """Every load of the manifest beside its file's row count in the lake (Parquet metadata).

    A load's rows all carry loaded_at = the manifest's started_at, whose UTC date is its folder.
    """
    rows = con.execute(
        "select load_id, strftime(started_at, '%Y-%m-%d'), rows_loaded from raw.load_manifest "
        "order by started_at, load_id").fetchall()
    loads = []
    for load_id, load_date, rows_loaded in rows:
        path = events_file(lake_dir, load_id, load_date)
        in_lake = pq.ParquetFile(path).metadata.num_rows if path.exists() else None
        loads.append(LakeLoad(load_id, load_date, int(rows_loaded), in_lake))
    return loads


def _write_load(con: duckdb.DuckDBPyConnection, lake_dir: Path, load_id: str,
                load_date: str) -> int:
    columns = ", ".join(EVENT_COLUMNS)
    return _write_atomically(con.sql(
        f"select {columns} from raw.events where load_id = {sql_literal(load_id)} "
        "order by received_at, message_id"), events_file(lake_dir, load_id, load_date))


def _write_atomically(relation: duckdb.DuckDBPyRelation, target: Path) -> int:
    """The rows as Parquet at `target`: a temporary file, fsync'ed, renamed into place."""
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(f".{target.name}.partial")
    reader = relation.to_arrow_reader(BATCH_ROWS)
    schema = _utc_schema(reader.schema)
    rows = 0
    with pq.ParquetWriter(partial, schema, compression="zstd") as writer:
        for batch in reader:
            writer.write_batch(batch.cast(schema))
            rows += batch.num_rows
    os.chmod(partial, 0o600)  # personal data (docs/privacy.md)
    fsync_path(partial)
    os.replace(partial, target)
    fsync_path(target.parent)
    return rows


def _utc_schema(schema: pa.Schema) -> pa.Schema:
    """The same columns, timestamps marked as UTC instants (the values are UTC already)."""
    return pa.schema([
        pa.field(f.name, UTC_TIMESTAMP, f.nullable) if f.name in TIMESTAMP_COLUMNS else f
        for f in schema
    ])
