"""The HTTP collector: Segment Tracking API + engagement API, landing events durably."""

from ewh.collector.app import create_app
from ewh.collector.settings import CollectorSettings

__all__ = ["CollectorSettings", "create_app"]
