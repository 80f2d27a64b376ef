"""What the collector needs from the settings, as one frozen value its routes share."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from ewh.common.settings import CONSENT_POLICIES, ConsentPolicy, Settings, get_settings
from ewh.contract.rules import DEFAULT_TIMESTAMP_FLOOR
from ewh.privacy.keys import PrivacyKeys

__all__ = ["CONSENT_POLICIES", "CollectorSettings", "ConsentPolicy"]


@dataclass(frozen=True, slots=True)
class CollectorSettings:
    write_keys: frozenset[str]
    landing_dir: Path
    read_keys: frozenset[str] = frozenset()
    admin_keys: frozenset[str] = frozenset()
    consent_policy: ConsentPolicy = "accept_and_flag"
    max_file_bytes: int = 64 << 20  # rotate a landing file at this size...
    max_file_age_seconds: float = 60.0  # ...or this age, so the loader sees events soon
    max_message_bytes: int = 32 * 1024  # Segment: 32 KB per message
    max_batch_bytes: int = 500 * 1024  # Segment: 500 KB per batch request
    max_engagement_batch: int = 100  # engagement API: events per /api/engagement/events call
    max_listed_errors: int = 100  # an answer lists at most this many invalid events
    serving_path: Path = Path("data/serving.duckdb")  # what the segment API reads (read-only)
    exports_dir: Path = Path("data/exports")  # the export files the read API serves
    cors_origins: tuple[str, ...] = ()
    rate_limit: str = "1000/second"  # per key and process, `limits` notation; "" = none
    header_timeout_seconds: float = 10.0
    body_timeout_seconds: float = 30.0
    keep_alive_seconds: float = 5.0
    max_connections: int = 1000
    timestamp_floor: datetime = DEFAULT_TIMESTAMP_FLOOR  # the contract's earliest time
    consent_keys: frozenset[str] = frozenset()  # GET/PUT /api/users/{userId}/consent only
    # The privacy keys (ewh.privacy.keys); None: from the settings when the app starts.
    privacy: PrivacyKeys | None = field(default=None, repr=False)
    warehouse: Path | None = None  # what DELETE /api/users/{userId} erases from
    experiments_dir: Path = Path("experiments")  # experiments as code (the promotion API)
    promotion_reload_seconds: float = 1.0  # how often the promotion API looks for a publish
    nats_url: str | None = None  # the event stream (ewh.stream.publisher); None: off
    stream_publish_queue: int = 20_000
    stream_duplicate_window_seconds: float = 7200.0
    stream_max_age_seconds: float = 7 * 86400.0

    @classmethod
    def from_settings(cls, settings: Settings | None = None) -> CollectorSettings:
        settings = settings or get_settings()
        return cls(
            write_keys=settings.write_keys,
            read_keys=settings.read_keys,
            admin_keys=settings.admin_keys,
            landing_dir=settings.landing_dir,
            serving_path=settings.serving,
            exports_dir=settings.exports_dir,
            consent_policy=settings.consent_policy,
            max_file_bytes=settings.landing_max_bytes,
            max_file_age_seconds=settings.landing_max_age_seconds,
            cors_origins=settings.cors_origins,
            rate_limit=settings.rate_limit,
            header_timeout_seconds=settings.collector_header_timeout_seconds,
            body_timeout_seconds=settings.collector_body_timeout_seconds,
            keep_alive_seconds=settings.collector_keep_alive_seconds,
            max_connections=settings.collector_max_connections,
            timestamp_floor=settings.timestamp_floor,
            consent_keys=settings.consent_keys,
            privacy=PrivacyKeys.from_settings(settings),
            warehouse=settings.warehouse,
            experiments_dir=settings.experiments_dir,
            promotion_reload_seconds=settings.promotion_reload_seconds,
            nats_url=settings.nats_url,
            stream_publish_queue=settings.stream_publish_queue,
            stream_duplicate_window_seconds=settings.stream_duplicate_window_seconds,
            stream_max_age_seconds=settings.stream_max_age_seconds,
        )

    @classmethod
    def from_env(cls) -> CollectorSettings:
        """The collector's settings from the EWH_* environment (uvicorn workers start here)."""
        return cls.from_settings(get_settings())
