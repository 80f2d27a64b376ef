"""Every path, key and policy of the warehouse, in one typed object read from the environment.

Each field is the environment variable `EWH_<FIELD>` (for example `EWH_WAREHOUSE`,
`EWH_WRITE_KEYS`). Nothing else in the code reads these variables: call `get_settings()`.
(Dagster builds its `WarehouseSettings` resource from the same variables with `dg.EnvVar`;
`ewh collect` hands the settings to its uvicorn worker processes as variables.)

They are read once per distinct environment: a test or a CLI flag that changes a variable
gets a fresh object, and everything else shares one.

Relative paths are taken from the working directory; the defaults live under the project's
`data/` folder, whatever the working directory.
"""

from __future__ import annotations

import os
from datetime import datetime
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from ewh.common.clock import to_naive_utc
from ewh.contract.rules import DEFAULT_TIMESTAMP_FLOOR

PROJECT_ROOT = Path(__file__).resolve().parents[2]
ENV_PREFIX = "EWH_"

ConsentPolicy = Literal["accept_and_flag", "reject"]
CONSENT_POLICIES: tuple[ConsentPolicy, ...] = ("accept_and_flag", "reject")


def _data(name: str) -> Path:
    return PROJECT_ROOT / "data" / name


class Settings(BaseSettings):
    """The warehouse's settings; the field docs are what `docs/architecture.md` lists."""

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, frozen=True, extra="ignore")

    # --- where things live (the public interface) ------------------------------------------
    warehouse: Path = Field(_data("warehouse.duckdb"), description="the DuckDB warehouse file")
    landing_dir: Path = Field(_data("landing"),
                              description="closed landing files wait here for the loader")
    serving: Path = Field(_data("serving.duckdb"),
                          description="the read-only copy analysts, exports and the API read")
    exports_dir: Path = Field(_data("exports"), description="segment exports")
    report: Path = Field(_data("report.html"),
                         description="the analyst report (one self-contained HTML file)")
    ops_db: Path = Field(_data("ops.duckdb"),
                         description="operational records (run-failure alerts), apart from the "
                         "warehouse's writer lock")
    gx_project_dir: Path | None = Field(
        None, description="another Great Expectations project folder (default: expectations/)")
    lake_dir: Path | None = Field(
        None, description="also publish each load's accepted rows as Parquet under this folder "
        "(raw/events/load_date=.../<load_id>.parquet), the raw layer Spark reads; unset: off")
    dbt_target: Literal["duckdb", "spark"] = Field(
        "duckdb", description="the dbt target the models build on (profiles.yml): duckdb, or "
        "spark (the Parquet lake EWH_LAKE_DIR in, tables under EWH_SPARK_WAREHOUSE out; the "
        "readers of the built tables read those through DuckDB views, docs/spark.md)")
    spark_warehouse: Path = Field(_data("spark-warehouse"),
                                  description="the Spark target's tables and metastore (dbt "
                                  "target spark, local session)")
    dbt_target_dir: Path = Field(PROJECT_ROOT / "target",
                                 description="dbt's target folder, where manifest.json is")

    # --- time --------------------------------------------------------------------------------
    as_of: datetime | None = Field(
        None, description="pins every time window (dbt var as_of, quality checks); default: now")

    # --- collector ---------------------------------------------------------------------------
    # Keys have one scope each (ewh/collector/keys.py): a key listed in two is refused.
    write_keys: Annotated[frozenset[str], NoDecode] = Field(
        frozenset(), description="comma-separated write keys: intake only (the keys SDKs and "
        "browsers embed); they never read")
    read_keys: Annotated[frozenset[str], NoDecode] = Field(
        frozenset(), description="comma-separated read keys: the segment API and the export "
        "files; they cannot send events")
    admin_keys: Annotated[frozenset[str], NoDecode] = Field(
        frozenset(), description="comma-separated admin keys: administration (status; erasure "
        "and consent management); they can also read")
    consent_keys: Annotated[frozenset[str], NoDecode] = Field(
        frozenset(), description="comma-separated consent keys: read and set a user's consent "
        "(GET/PUT /api/users/{userId}/consent) and nothing else")
    cors_origins: Annotated[tuple[str, ...], NoDecode] = Field(
        (), description="comma-separated browser origins allowed to send events "
        "(e.g. https://shop.example.com), or * for any; empty: no CORS")
    rate_limit: str = Field(
        "1000/second", description="requests allowed per key and collector process, in the "
        "`limits` notation (e.g. 1000/second, 50/second;20000/hour); empty: no limit")
    collector_header_timeout_seconds: float = Field(
        10.0, gt=0, description="a request's headers must arrive within this time of its "
        "first byte (of the connection, for a new one), else the connection is closed")
    collector_body_timeout_seconds: float = Field(
        30.0, gt=0, description="a request's body must arrive within this time of its headers")
    collector_keep_alive_seconds: float = Field(
        5.0, gt=0, description="an idle keep-alive connection is closed after this time")
    collector_max_connections: int = Field(
        1000, gt=0, description="open connections per collector process (also capped below "
        "the process's file-descriptor limit); at the cap the oldest idle one is closed")
    consent_policy: ConsentPolicy = Field(
        "accept_and_flag", description="what the collector does with a message that refuses "
        "analytics consent: accept_and_flag or reject")
    landing_max_bytes: int = Field(64 << 20, gt=0,
                                   description="rotate a landing file at this size")
    landing_max_age_seconds: float = Field(60.0, gt=0,
                                           description="...or this age, so the loader sees "
                                           "events soon")

    # --- privacy (ewh/privacy, docs/privacy.md) ---------------------------------------------
    key_store: Path = Field(_data("keystore"), description="the key store (mode 0700): the "
                            "per-user data keys, the suppression list and, unless set, the "
                            "pseudonym key file; keep it apart from the warehouse and backups")
    pseudonym_key: SecretStr | None = Field(
        None, description="the HMAC key of pseudonyms and suppression hashes (at least 32 "
        "characters); else EWH_PSEUDONYM_KEY_FILE")
    pseudonym_key_file: Path | None = Field(
        None, description="a file holding the HMAC key (default: <key_store>/pseudonym.key, "
        "created with 32 random bytes, mode 0600, on first use)")
    retired_pseudonym_keys: SecretStr | None = Field(
        None, description="comma-separated HMAC keys used before a rotation: still matched "
        "against the suppression list, never used to make new pseudonyms")
    export_plain_email: bool = Field(
        True, description="segment exports carry the decrypted email of consented members "
        "(for email tools); false: only email_sha256 (for ad platforms' customer match)")
    erasure_receipts: Path = Field(_data("erasures"), description="one JSON receipt per "
                                   "erasure (mode 0600): ids only as keyed hashes")
    personal_traits: Annotated[tuple[str, ...], NoDecode] = Field(
        (), description="comma-separated extra trait names that are personal data: "
        "pseudonymised at intake like phone (docs/privacy.md)")

    # --- the event contract (collector and loader alike) ------------------------------------
    timestamp_floor: datetime = Field(
        DEFAULT_TIMESTAMP_FLOOR, description="the earliest timestamp, sentAt or receivedAt "
        "accepted (naive means UTC): older ones are refused as timestamp_before_floor")

    # --- loading -------------------------------------------------------------------------------
    load_memory_limit: str = Field(
        "1GB", pattern=r"^\d+(\.\d+)?\s*(KB|MB|GB|TB|KiB|MiB|GiB|TiB)$",
        description="DuckDB's memory limit while `ewh load` runs (it spills to disk "
        "beyond it): without it DuckDB may cache up to 80 % of RAM during a large load")

    # --- predictions (docs/predictions.md) ---------------------------------------------------
    models_dir: Path = Field(_data("models"),
                             description="the model registry: one folder per model version")
    prediction_min_auc_gain: float = Field(
        0.03, description="a model is published only when its holdout ROC AUC beats its rule "
        "baseline's by at least this much")
    prediction_snapshot_days: int = Field(7, gt=0,
                                          description="days between training snapshot dates")
    prediction_training_snapshots: int = Field(6, gt=0,
                                               description="training snapshot dates per model")
    prediction_holdout_snapshots: int = Field(2, gt=0,
                                              description="holdout (latest) snapshot dates per "
                                              "model")
    prediction_seed: int = Field(0, description="the training seed (same data + seed = same "
                                                "model)")

    # --- promotion (docs/promotion.md) --------------------------------------------------------
    experiments_dir: Path = Field(PROJECT_ROOT / "experiments",
                                  description="experiments as code: one <key>.yml per experiment")
    promotion_reload_seconds: float = Field(
        1.0, gt=0, description="how often the promotion API checks the serving copy for a new "
        "publish (its in-memory snapshot is then swapped atomically)")

    # --- real-time activation (ewh/stream, ewh/activation, docs/realtime.md) ---------------
    nats_url: str | None = Field(
        None, description="the NATS JetStream server acknowledged events are published to "
        "(e.g. nats://127.0.0.1:4222); unset: no publishing")
    stream_dir: Path = Field(_data("stream"), description="the stream consumer's micro-batch "
                             "files (loaded like landing files, exactly once by messageId)")
    stream_publish_queue: int = Field(
        20_000, gt=0, description="events the collector holds for the broker; when full "
        "(broker slow or down) more are dropped and counted: `ewh stream replay` catches up")
    stream_duplicate_window_seconds: float = Field(
        7200.0, gt=0, description="how long JetStream remembers a message id: a replay within "
        "it of the outage publishes no duplicate (the ids are kept in the broker's memory)")
    stream_max_age_seconds: float = Field(
        7 * 86400.0, gt=0, description="how long the broker keeps events and changes: the "
        "landing files and the warehouse are the record, and an erased person's messages are "
        "gone from the broker within this time")
    stream_batch_max: int = Field(50_000, gt=0, description="events per micro-batch at most")
    stream_batch_wait_seconds: float = Field(
        2.0, gt=0, description="how long a micro-batch waits for events before it loads")
    stream_refresh_tests: bool = Field(
        True, description="each micro-batch runs the data tests of the fast segments and the "
        "membership tables before it publishes (a failure keeps the last good serving copy)")
    stream_refresh_seconds: float = Field(
        60.0, gt=0, description="the consumer refreshes the fast segments at least this often "
        "even without events (a cart add becomes abandoned by the clock alone)")
    webhook_subscribers: Path = Field(PROJECT_ROOT / "activation" / "subscribers.yml",
                                      description="webhook subscribers as code (segment, url, "
                                      "secret name, filters)")
    webhook_secrets: Annotated[dict[str, SecretStr], NoDecode] = Field(
        {}, description="comma-separated name=secret pairs: the signing secret each subscriber "
        "names (at least 16 characters each)")
    webhook_state: Path = Field(_data("webhooks.sqlite"),
                                description="the dispatcher's cursors, outbox, deliveries and "
                                "dead letters (SQLite: the dispatcher, the CLI and Dagster "
                                "share it)")
    webhook_max_attempts: int = Field(8, gt=0, description="tries before a dead letter")
    webhook_backoff_seconds: float = Field(
        1.0, gt=0, description="the first retry's delay; each next one doubles (with jitter "
        "of up to 10%), capped at webhook_backoff_max_seconds")
    webhook_backoff_max_seconds: float = Field(300.0, gt=0,
                                               description="the longest delay between tries")
    webhook_timeout_seconds: float = Field(10.0, gt=0,
                                           description="a receiver must answer within this")

    @field_validator("warehouse", "landing_dir", "serving", "exports_dir", "report", "ops_db",
                     "gx_project_dir", "lake_dir", "spark_warehouse", "dbt_target_dir",
                     "key_store", "pseudonym_key_file", "erasure_receipts", "models_dir",
                     "experiments_dir", "stream_dir", "webhook_subscribers", "webhook_state")
    @classmethod
    def _absolute(cls, path: Path | None) -> Path | None:
        # Absolute, so dbt subprocesses, the loader and the exports agree whatever their cwd.
        if path is None or str(path) == "":
            return None
        return path if path.is_absolute() else Path.cwd() / path

    @field_validator("write_keys", "read_keys", "admin_keys", "consent_keys", mode="before")
    @classmethod
    def _split_keys(cls, value: object) -> object:
        if isinstance(value, str):
            return frozenset(k.strip() for k in value.split(",") if k.strip())
        return value

    @field_validator("personal_traits", mode="before")
    @classmethod
    def _split_traits(cls, value: object) -> object:
        if isinstance(value, str):
            return tuple(t.strip() for t in value.split(",") if t.strip())
        return value

    @field_validator("webhook_secrets", mode="before")
    @classmethod
    def _split_secrets(cls, value: object) -> object:
        if not isinstance(value, str):
            return value
        pairs = {}
        for item in (i.strip() for i in value.split(",") if i.strip()):
            name, sep, secret = item.partition("=")
            if not sep or not name.strip():
                raise ValueError("EWH_WEBHOOK_SECRETS is name=secret pairs separated by commas")
            pairs[name.strip()] = secret.strip()
        return pairs

    @field_validator("webhook_secrets", mode="after")
    @classmethod
    def _long_secrets(cls, value: dict[str, SecretStr]) -> dict[str, SecretStr]:
        for name, secret in value.items():
            if len(secret.get_secret_value()) < 16:
                raise ValueError(f"the webhook secret {name!r} must be at least 16 characters")
        return value

    @field_validator("pseudonym_key", mode="after")
    @classmethod
    def _long_key(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and len(value.get_secret_value()) < 32:
            raise ValueError("the pseudonym key must be at least 32 characters")
        return value

    @field_validator("cors_origins", mode="before")
    @classmethod
    def _split_origins(cls, value: object) -> object:
        if isinstance(value, str):
            return tuple(o.strip().rstrip("/") for o in value.split(",") if o.strip())
        return value

    @field_validator("rate_limit", mode="after")
    @classmethod
    def _parse_rate_limit(cls, value: str) -> str:
        value = value.strip()
        if value:
            from limits import parse_many

            try:
                parse_many(value)
            except ValueError as exc:
                raise ValueError(f"EWH_RATE_LIMIT {value!r} is not in the `limits` notation, "
                                 "e.g. 1000/second or 50/second;20000/hour") from exc
        return value

    @model_validator(mode="after")
    def _one_scope_per_key(self) -> Settings:
        scopes = {"EWH_WRITE_KEYS": self.write_keys, "EWH_READ_KEYS": self.read_keys,
                  "EWH_ADMIN_KEYS": self.admin_keys, "EWH_CONSENT_KEYS": self.consent_keys}
        names = list(scopes)
        for i, first in enumerate(names):
            for second in names[i + 1:]:
                if scopes[first] & scopes[second]:
                    # Never name the key itself: settings errors end up in logs.
                    raise ValueError(f"a key is listed in both {first} and {second}; each key "
                                     "has exactly one scope")
        return self

    @field_validator("consent_policy", mode="before")
    @classmethod
    def _normalise_policy(cls, value: object) -> object:
        return value.strip().lower() if isinstance(value, str) else value

    @field_validator("as_of", "timestamp_floor", mode="after")
    @classmethod
    def _naive_utc(cls, value: datetime | None) -> datetime | None:
        return to_naive_utc(value) if value is not None else None

    @property
    def manifest_path(self) -> Path:
        """dbt's manifest: the segments and the quality suites are discovered from it."""
        return self.dbt_target_dir / "manifest.json"

    def as_env(self) -> dict[str, str]:
        """These settings as `EWH_*` variables, for subprocesses (dbt, the collector)."""
        env: dict[str, str] = {}
        for name, value in self.model_dump().items():
            if value is None:
                continue
            if isinstance(value, SecretStr):
                value = value.get_secret_value()
            elif isinstance(value, dict):
                value = ",".join(f"{k}={v.get_secret_value() if isinstance(v, SecretStr) else v}"
                                 for k, v in value.items())
            elif isinstance(value, frozenset | set):
                value = ",".join(sorted(value))
            elif isinstance(value, tuple):
                value = ",".join(value)
            elif isinstance(value, datetime):
                value = value.isoformat(sep=" ")
            env[ENV_PREFIX + name.upper()] = str(value)
        return env


def _environment_key() -> tuple[tuple[str, str], ...]:
    return tuple(sorted((k, v) for k, v in os.environ.items() if k.startswith(ENV_PREFIX)))


class SettingsError(ValueError):
    """Invalid EWH_* settings, said without the values given: they may be keys."""


@lru_cache(maxsize=8)
def _settings_for(_key: tuple[tuple[str, str], ...], _cwd: str) -> Settings:
    try:
        return Settings()
    except ValidationError as exc:
        problems = "; ".join(
            f"{ENV_PREFIX}{'_'.join(str(p) for p in e['loc']).upper() or 'SETTINGS'}: {e['msg']}"
            if e["loc"] else e["msg"]
            for e in exc.errors(include_input=False, include_url=False))
        raise SettingsError(f"invalid settings: {problems}") from None


def get_settings() -> Settings:
    """The settings of the current environment, read once per distinct environment."""
    return _settings_for(_environment_key(), os.getcwd())
