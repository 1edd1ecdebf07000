"""The row schema of the `logs` table: one list, typed for Arrow, Delta and DuckDB. Pure.

No user ever writes a schema; every file of the table carries exactly these types.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pyarrow as pa

# (column, duckdb type, nullable); timestamps are microseconds UTC.
LOG_COLUMNS: list[tuple[str, str, bool]] = [
    ("ts", "TIMESTAMP WITH TIME ZONE", False),
    ("level", "VARCHAR", False),
    ("service", "VARCHAR", False),
    ("host", "VARCHAR", False),
    ("message", "VARCHAR", False),
    ("trace_id", "VARCHAR", True),
    ("attrs", "VARCHAR", False),
    ("stream_id", "VARCHAR", False),
    ("ingested_at", "TIMESTAMP WITH TIME ZONE", False),
    ("date", "VARCHAR", False),
    ("hour", "VARCHAR", False),
]
LOG_COLUMN_NAMES = [name for name, _, _ in LOG_COLUMNS]
LEVELS = ["TRACE", "DEBUG", "INFO", "WARN", "ERROR", "FATAL"]


def arrow_type(duckdb_type: str) -> pa.DataType:
    import pyarrow as pa

    if duckdb_type.startswith("TIMESTAMP"):
        return pa.timestamp("us", tz="UTC")
    return {
        "VARCHAR": pa.string(),
        "BIGINT": pa.int64(),
        "DOUBLE": pa.float64(),
        "INTEGER": pa.int32(),
    }[duckdb_type]


def arrow_schema(columns: list[tuple[str, str, bool]] = LOG_COLUMNS) -> pa.Schema:
    import pyarrow as pa

    # Every column nullable in the file: Polars and other writers emit nullable fields, and a
    # nullability mismatch would make Delta reject their commits. `logs` enforces NOT NULL itself.
    return pa.schema([pa.field(n, arrow_type(t)) for n, t, _ in columns])


# Numeric attrs summarised by the rollups when present (p50/p95/p99/max each).
MEASURES = ["latency_ms", "duration_ms"]
_MEASURE_COLUMNS: list[tuple[str, str, bool]] = [
    (f"{m}_{stat}", "DOUBLE", True) for m in MEASURES for stat in ("p50", "p95", "p99", "max")
]
_ROLLUP_VALUES: list[tuple[str, str, bool]] = [
    ("service", "VARCHAR", False),
    ("level", "VARCHAR", False),
    ("count", "BIGINT", False),
    ("error_count", "BIGINT", False),  # rows at ERROR or FATAL
    ("message_bytes", "BIGINT", False),
    ("distinct_hosts", "BIGINT", False),
    ("first_ts", "TIMESTAMP WITH TIME ZONE", False),
    ("last_ts", "TIMESTAMP WITH TIME ZONE", False),
    *_MEASURE_COLUMNS,
]
# rollups_hourly: one row per (date, hour, service, level), partitioned by date, hour.
ROLLUP_HOURLY_COLUMNS: list[tuple[str, str, bool]] = [
    ("date", "VARCHAR", False),
    ("hour", "VARCHAR", False),
    *_ROLLUP_VALUES,
]
# rollups_daily: one row per (date, service, level), partitioned by date; computed from raw rows.
ROLLUP_DAILY_COLUMNS: list[tuple[str, str, bool]] = [("date", "VARCHAR", False), *_ROLLUP_VALUES]
