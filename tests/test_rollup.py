"""`logs rollup` on a real lake: rollups equal a from-scratch recompute over deduplicated raw
rows (also after late data and compaction), only dirty partitions are rewritten, a rerun writes
nothing, the tables carry exactly the schema.py columns."""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
import pyarrow as pa
from deltalake import DeltaTable

from ingest.lake import layout
from ingest.lake.schema import ROLLUP_DAILY_COLUMNS, ROLLUP_HOURLY_COLUMNS, arrow_schema
from ingest.lake.writer import LakeWriter
from ingest.records import decode
from ingest.upkeep import rollup
from tests.helpers import DAILY_ORDER, closed_hour, entries, fill_hour, run_logs, table_rows

HOURLY_ORDER = "order by date, hour, service, level"


def from_scratch(data_dir: Path, daily: bool) -> list[tuple[object, ...]]:
    """The rollup recomputed over every raw row, deduplicated by stream_id."""
    files = DeltaTable(str(layout.table_path(data_dir))).file_uris()
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    con.execute(
        f"create view raw as select distinct on (stream_id) * from read_parquet({files!r}, "
        "hive_partitioning=true, hive_types={'date': varchar, 'hour': varchar})"
    )
    partition = "date" if daily else "date, hour"
    sql = rollup.aggregate_sql("raw", partition)
    return con.execute(f"select * from ({sql}) {DAILY_ORDER if daily else HOURLY_ORDER}").fetchall()


def versions(data_dir: Path) -> tuple[int, int]:
    return tuple(
        DeltaTable(str(layout.table_path(data_dir, t))).version()  # type: ignore[return-value]
        for t in (layout.ROLLUPS_HOURLY, layout.ROLLUPS_DAILY)
    )


def dedup_count(data_dir: Path) -> int:
    files = DeltaTable(str(layout.table_path(data_dir))).file_uris()
    return (
        duckdb.connect()
        .execute("select count(distinct stream_id) from read_parquet(?)", [files])
        .fetchall()[0][0]
    )


def sum_count(data_dir: Path, name: str) -> int:
    order = HOURLY_ORDER if name == layout.ROLLUPS_HOURLY else DAILY_ORDER
    index = 4 if name == layout.ROLLUPS_HOURLY else 3
    return sum(int(r[index]) for r in table_rows(data_dir, name, order))  # type: ignore[call-overload]


def test_rollups_equal_a_recompute_over_deduplicated_rows(
    env: dict[str, str], data_dir: Path
) -> None:
    # Two hours of one day, one of the day before; redelivered duplicates in every hour.
    starts = [closed_hour(48), closed_hour(30), closed_hour(29)]
    for i, start in enumerate(starts):
        fill_hour(data_dir, start, i * 10_000, 1500)
    # A string "latency" is not a measurement; a missing one is simply absent.
    odd = json.dumps(
        {
            "ts": starts[1].isoformat(),
            "service": "svc0",
            "level": "INFO",
            "message": "odd",
            "latency_ms": "12",
        }
    )
    LakeWriter(data_dir).commit([decode("1700000099999-0", [b"data", odd.encode()])])

    result = run_logs(["rollup"], env)
    assert result.returncode == 0, result.stderr
    assert result.stdout == b""
    days = len({s.date() for s in starts})
    assert f"rolled up 3 hours, {days} days".encode() in result.stderr

    total = dedup_count(data_dir)
    assert sum_count(data_dir, layout.ROLLUPS_HOURLY) == total
    assert sum_count(data_dir, layout.ROLLUPS_DAILY) == total
    assert table_rows(data_dir, layout.ROLLUPS_HOURLY, HOURLY_ORDER) == from_scratch(
        data_dir, False
    )
    assert table_rows(data_dir, layout.ROLLUPS_DAILY, DAILY_ORDER) == from_scratch(data_dir, True)
    # Exactly the declared schemas (another engineer's views rely on them).
    for name, columns in (
        (layout.ROLLUPS_HOURLY, ROLLUP_HOURLY_COLUMNS),
        (layout.ROLLUPS_DAILY, ROLLUP_DAILY_COLUMNS),
    ):
        schema = pa.schema(DeltaTable(str(layout.table_path(data_dir, name))).schema().to_arrow())
        assert [(f.name, str(f.type)) for f in schema] == [
            (f.name, str(f.type)) for f in arrow_schema(columns)
        ]


def test_rerun_writes_nothing_and_late_data_recomputes_only_its_hour_and_day(
    env: dict[str, str], data_dir: Path
) -> None:
    starts = [closed_hour(28), closed_hour(27), closed_hour(52)]
    for i, start in enumerate(starts):
        fill_hour(data_dir, start, i * 10_000, 1000)
    assert run_logs(["rollup"], env).returncode == 0
    first = versions(data_dir)

    again = run_logs(["rollup"], env)
    assert again.returncode == 0, again.stderr
    assert b"rolled up 0 hours, 0 days" in again.stderr
    assert versions(data_dir) == first

    # Late rows (and a redelivered copy of one already there) in an old hour.
    late = entries(starts[0], range(90_000, 90_200), late=True)
    LakeWriter(data_dir).commit(late + entries(starts[0], range(3, 4)))
    result = run_logs(["rollup"], env)
    assert result.returncode == 0, result.stderr
    assert b"rolled up 1 hours, 1 days" in result.stderr
    assert versions(data_dir) == (first[0] + 1, first[1] + 1)
    total = dedup_count(data_dir)
    assert sum_count(data_dir, layout.ROLLUPS_HOURLY) == total
    assert sum_count(data_dir, layout.ROLLUPS_DAILY) == total
    assert table_rows(data_dir, layout.ROLLUPS_HOURLY, HOURLY_ORDER) == from_scratch(
        data_dir, False
    )
    assert table_rows(data_dir, layout.ROLLUPS_DAILY, DAILY_ORDER) == from_scratch(data_dir, True)


def test_compaction_changes_files_not_rollups(env: dict[str, str], data_dir: Path) -> None:
    start = closed_hour(31)
    fill_hour(data_dir, start, 0, 2000)
    assert run_logs(["rollup"], env).returncode == 0
    before = table_rows(data_dir, layout.ROLLUPS_HOURLY, HOURLY_ORDER)
    assert run_logs(["compact"], env).returncode == 0
    # New files, same rows: recomputed (the state tracks files), identical result.
    result = run_logs(["rollup", "--since", "3d"], env)
    assert b"rolled up 1 hours, 1 days" in result.stderr
    assert table_rows(data_dir, layout.ROLLUPS_HOURLY, HOURLY_ORDER) == before
    rebuilt = run_logs(["rollup", "--all"], env)
    assert rebuilt.returncode == 0, rebuilt.stderr
    assert table_rows(data_dir, layout.ROLLUPS_HOURLY, HOURLY_ORDER) == before


def test_since_limits_the_partitions_and_bad_values_are_usage_errors(
    env: dict[str, str], data_dir: Path
) -> None:
    fill_hour(data_dir, closed_hour(100), 0, 500)
    fill_hour(data_dir, closed_hour(3), 10_000, 500)
    result = run_logs(["rollup", "--since", "1d", "--hourly"], env)
    assert result.returncode == 0, result.stderr
    assert b"rolled up 1 hours, 0 days" in result.stderr
    bad = run_logs(["rollup", "--since", "last tuesday"], env)
    assert bad.returncode == 2
    assert bad.stderr.startswith(b"logs: error: --since")
