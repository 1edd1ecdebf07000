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
