"""Where things live under the data dir, and how event time maps to partitions. Pure."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

LOGS_TABLE = "logs"
ROLLUPS_HOURLY = "rollups_hourly"
ROLLUPS_DAILY = "rollups_daily"
PARTITION_COLUMNS = ["date", "hour"]

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def lake_dir(data_dir: Path) -> Path:
    return data_dir / "lake"


def table_path(data_dir: Path, table: str = LOGS_TABLE) -> Path:
    return lake_dir(data_dir) / table


def redis_dir(data_dir: Path) -> Path:
    return data_dir / "redis"


def state_dir(data_dir: Path) -> Path:
    return data_dir / "state"


def partition_of(ts: datetime) -> tuple[str, str]:
    """UTC event time -> (`YYYY-MM-DD`, `HH`)."""
    ts = ts.astimezone(UTC)
    return ts.strftime("%Y-%m-%d"), ts.strftime("%H")


def hour_start(date: str, hour: str) -> datetime:
    return datetime.strptime(f"{date} {hour}", "%Y-%m-%d %H").replace(tzinfo=UTC)


def hour_end(date: str, hour: str) -> datetime:
    return hour_start(date, hour) + timedelta(hours=1)


def micros(ts: datetime) -> int:
    """Exact microseconds since the epoch (float timestamps lose the last digit)."""
    return (ts - EPOCH) // timedelta(microseconds=1)
