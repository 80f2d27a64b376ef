"""The raw layer's tables, written by Python (the loader, the scoring step); dbt reads them as
sources.

All timestamps are naive TIMESTAMP values in UTC (portable to Spark).
"""

from __future__ import annotations

import duckdb

RAW_DDL = """
create schema if not exists raw;

-- One row per accepted event. message_id is unique (the loader guarantees it).
create table if not exists raw.events (
    message_id      varchar not null,   -- Segment messageId, the idempotency key
    message_type    varchar not null,   -- track | identify | page | screen | alias | group
    event_name      varchar,            -- track: event; page/screen: name
    user_id         varchar,
    anonymous_id    varchar,
    occurred_at     timestamp,          -- the client's timestamp, UTC, as sent (not skew-corrected)
    sent_at         timestamp,          -- the client's sentAt, UTC
    received_at     timestamp not null, -- when the collector received it, UTC
    payload         varchar not null,   -- the JSON message, personal fields as the policy
                                        -- leaves them (ewh.privacy.policy, docs/privacy.md)
    source          varchar not null,   -- 'file:<path>:<line>' or 'http:<request id>'
    file_checksum   varchar,            -- sha256 of the source file
    load_id         varchar not null,
    loaded_at       timestamp not null
);

-- One row per refused record: nothing is silently dropped.
create table if not exists raw.events_rejected (
    source          varchar not null,   -- 'file:<path>:<line>' or 'http:<request id>'
    line_number     bigint,
    message_id      varchar,            -- when it could be read
    reason          varchar not null,   -- machine code, e.g. missing_field, invalid_timestamp
    field           varchar,            -- the offending field, e.g. messageId, timestamp
    detail          varchar not null,   -- human sentence naming record, field and expectation
    raw_text        varchar not null,   -- the record exactly as read
    file_checksum   varchar,
    load_id         varchar not null,
    rejected_at     timestamp not null
);

-- One row per loaded file (or part of a file that grew, see ewh.ingest.loader), and one per
-- quarantined file. rows_read = rows_loaded + rows_duplicate + rows_rejected + rows_suppressed
-- (rows_suppressed: events of erased ids, dropped by the suppression list, ewh.privacy).
create table if not exists raw.load_manifest (
    load_id         varchar not null,
    file_path       varchar not null,
    file_checksum   varchar not null,   -- sha256 of the bytes loaded ('' when unreadable)
    file_bytes      bigint not null,    -- how many bytes of the file were loaded
    rows_read       bigint not null,
    rows_loaded     bigint not null,
    rows_duplicate  bigint not null,
    rows_rejected   bigint not null,
    started_at      timestamp not null,
    finished_at     timestamp not null
);
"""

# Columns added after the first release: added to an older warehouse too.
MANIFEST_ADDITIONS = """
alter table raw.load_manifest add column if not exists status varchar default 'loaded';
alter table raw.load_manifest add column if not exists error varchar;
alter table raw.load_manifest add column if not exists quarantined_to varchar;
alter table raw.load_manifest add column if not exists rows_suppressed bigint default 0;
"""
# status: 'loaded', or 'quarantined' (the file could not be read: `error` says why, and
# `quarantined_to` where it was moved; every count is 0).
# Apart from RAW_DDL: the scores are written by scoring, not by loads.
PREDICTION_SCORES_DDL = """
create schema if not exists raw;

-- The latest prediction scores, one row per user and published model. Written by the
-- scoring step (ewh/predictions/scoring.py), which replaces its rows on every run; empty
-- until a model is published. dbt reads it as a source (marts.user_predictions).
create table if not exists raw.prediction_scores (
    user_key        varchar not null,
    user_id         varchar,
    model_name      varchar not null,   -- purchase | churn
    model_version   varchar not null,   -- the registry folder, e.g. 20261001T000000-1a2b3c4d
    score           double not null,    -- the predicted probability, 0-1
    top_features    varchar,            -- the features that raised the score most, comma-separated
    as_of           timestamp not null, -- the instant the features were evaluated at
    feature_version varchar not null,   -- int_user_features.feature_version the model read
    scored_at       timestamp not null
);
"""


def ensure_raw_tables(con: duckdb.DuckDBPyConnection) -> None:
    """Create the raw schema and its tables when missing, and add later columns (idempotent)."""
    con.execute(RAW_DDL)
    con.execute(MANIFEST_ADDITIONS)
    con.execute(PREDICTION_SCORES_DDL)
