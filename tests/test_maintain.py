"""`logs maintain` on a real lake: retention removes exactly the partitions outside the window,
vacuum deletes their files from disk (only past its window), rollups outlive raw data."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyarrow as pa
from deltalake import DeltaTable

from ingest.lake import layout
from ingest.lake import state as lakestate
from tests.helpers import (
    DAILY_ORDER,
    closed_hour,
    fill_hour,
    key_of,
    lake_rows,
    run_logs,
    table_rows,
)


def parquet_files(folder: Path) -> set[str]:
    return {
        str(p.relative_to(folder)) for p in folder.rglob("*.parquet") if "_delta_log" not in p.parts
    }


def dates_in(data_dir: Path, table: str) -> set[str]:
    actions = pa.table(
        DeltaTable(str(layout.table_path(data_dir, table))).get_add_actions(flatten=True)
    )
    return set(actions.column("partition.date").to_pylist())


def test_retention_deletes_exactly_the_old_partitions_and_their_files(
    env: dict[str, str], data_dir: Path
) -> None:
    old = [closed_hour(24 * 40), closed_hour(24 * 31 + 5)]
    kept = [closed_hour(24 * 29), closed_hour(30)]
    for i, start in enumerate(old + kept):
        fill_hour(data_dir, start, i * 10_000, 400)
    wide = {**env, "LOGS_RETENTION_DAYS": "1000"}
    assert run_logs(["compact"], wide).returncode == 0
    assert run_logs(["rollup"], wide).returncode == 0
    daily_before = table_rows(data_dir, layout.ROLLUPS_DAILY, DAILY_ORDER)
    root = layout.table_path(data_dir)
    old_dirs = {f"date={s:%Y-%m-%d}/hour={s:%H}" for s in old}

    dry = run_logs(["maintain", "--dry-run"], env)
    assert dry.returncode == 0, dry.stderr
    assert b"logs: 2 partitions to delete" in dry.stderr
    assert dates_in(data_dir, layout.LOGS_TABLE) == {f"{s:%Y-%m-%d}" for s in old + kept}

    now = {**env, "LOGS_VACUUM_RETENTION_HOURS": "0"}
    result = run_logs(["maintain"], now)
    assert result.returncode == 0, result.stderr
    assert b"retention deleted 2 raw hours and 0 rollup partitions" in result.stderr
    assert dates_in(data_dir, layout.LOGS_TABLE) == {f"{s:%Y-%m-%d}" for s in kept}
    on_disk = parquet_files(root)
    assert not any(f.startswith(tuple(old_dirs)) for f in on_disk)
    # What is left on disk is exactly what the table references (compaction's inputs vacuumed).
    assert on_disk == {f for h in lakestate.snapshot(data_dir).values() for f in h.files}
    assert set(lakestate.load_compacted(data_dir)) == {key_of(s) for s in kept}
    assert len(lake_rows(data_dir, "select stream_id from t")) == 800
    assert list((layout.table_path(data_dir) / "_delta_log").glob("*.checkpoint.parquet"))

    # Rollups keep the deleted days, and a rollup run neither recomputes nor drops them.
    assert table_rows(data_dir, layout.ROLLUPS_DAILY, DAILY_ORDER) == daily_before
    again = run_logs(["rollup"], env)
    assert b"rolled up 0 hours, 0 days" in again.stderr
    assert table_rows(data_dir, layout.ROLLUPS_DAILY, DAILY_ORDER) == daily_before


def test_rollup_retention_and_the_vacuum_window(env: dict[str, str], data_dir: Path) -> None:
    starts = [closed_hour(24 * 12), closed_hour(26)]
    for i, start in enumerate(starts):
        fill_hour(data_dir, start, i * 10_000, 300)
    assert run_logs(["rollup"], env).returncode == 0
    assert run_logs(["compact"], env).returncode == 0
    root = layout.table_path(data_dir)
    replaced = parquet_files(root) - {
        f for h in lakestate.snapshot(data_dir).values() for f in h.files
    }
    assert len(replaced) == 10  # compaction's inputs: unreferenced, waiting for vacuum

    # Default window (1 h): a query that started before compaction can still read them.
    short = {**env, "LOGS_ROLLUP_RETENTION_DAYS": "10"}
    result = run_logs(["maintain"], short)
    assert result.returncode == 0, result.stderr
    assert b"0 raw hours and 2 rollup partitions" in result.stderr
    assert replaced <= parquet_files(root)
    for table in (layout.ROLLUPS_HOURLY, layout.ROLLUPS_DAILY):
        assert dates_in(data_dir, table) == {f"{starts[1]:%Y-%m-%d}"}

    result = run_logs(["maintain"], {**short, "LOGS_VACUUM_RETENTION_HOURS": "0"})
    assert result.returncode == 0, result.stderr
    assert not replaced & parquet_files(root)
    for table in (layout.ROLLUPS_HOURLY, layout.ROLLUPS_DAILY):
        folder = layout.table_path(data_dir, table)
        live = set(DeltaTable(str(folder)).file_uris())
        assert {str(folder / f) for f in parquet_files(folder)} == {
            u.removeprefix("file://") for u in live
        }


def rollup_counts(data_dir: Path, table: str, date: str) -> dict[str, int]:
    """Partition -> summed `count` of one date's rollup rows (`DATE/HH` or `DATE`)."""
    hourly = table == layout.ROLLUPS_HOURLY
    rows = table_rows(
        data_dir, table, "order by date, hour" if hourly else DAILY_ORDER
    )  # columns start with date[, hour], service, level, count
    out: dict[str, int] = {}
    for row in rows:
        if row[0] != date:
            continue
        key = f"{row[0]}/{row[1]}" if hourly else str(row[0])
        out[key] = out.get(key, 0) + int(row[4 if hourly else 3])  # type: ignore[call-overload]
    return out


def test_retention_rolls_up_a_late_day_before_deleting_its_raw_hours(
    env: dict[str, str], data_dir: Path
) -> None:
    ten = datetime.now(UTC).replace(hour=10, minute=0, second=0, microsecond=0)
    late = ten - timedelta(days=40)  # past retention (30 days), within rollup retention (400)
    date = f"{late:%Y-%m-%d}"
    ancient = ten - timedelta(days=500)  # past rollup retention too: nothing would keep it
    fill_hour(data_dir, late, 0, 200)
    fill_hour(data_dir, late + timedelta(hours=1), 1_000, 100)
    fill_hour(data_dir, ancient, 2_000, 50)
    fill_hour(data_dir, closed_hour(30), 10_000, 100)

    # `logs rollup` leaves days past retention alone, however it is asked.
    assert run_logs(["rollup", "--all"], env).returncode == 0
    assert rollup_counts(data_dir, layout.ROLLUPS_DAILY, date) == {}

    dry = run_logs(["maintain", "--dry-run"], env)
    assert dry.returncode == 0, dry.stderr
    assert f"rollups: 1 day without rollups to roll up before retention ({date})".encode() in (
        dry.stderr
    )
    assert b"would first roll up 1 day without rollups: 2 hours, 1 daily" in dry.stderr
    assert rollup_counts(data_dir, layout.ROLLUPS_DAILY, date) == {}

    result = run_logs(["maintain"], env)
    assert result.returncode == 0, result.stderr
    assert f"rollups: 1 day without rollups rolled up before retention ({date})".encode() in (
        result.stderr
    )
    assert (
        b"retention deleted 3 raw hours and 0 rollup partitions "
        b"(first rolled up 1 day without rollups: 2 hours, 1 daily)" in result.stderr
    )
    assert dates_in(data_dir, layout.LOGS_TABLE) == {f"{closed_hour(30):%Y-%m-%d}"}
    # Each entry once (fill_hour redelivers some), hours and the day alike.
    assert rollup_counts(data_dir, layout.ROLLUPS_HOURLY, date) == {
        f"{date}/10": 200,
        f"{date}/11": 100,
    }
    assert rollup_counts(data_dir, layout.ROLLUPS_DAILY, date) == {date: 300}
    assert rollup_counts(data_dir, layout.ROLLUPS_DAILY, f"{ancient:%Y-%m-%d}") == {}

    # Later late rows of that day find its rollup: their day's raw rows are partly gone, so it
    # is not recomputed from them (it would drop to 50), and they leave with retention.
    fill_hour(data_dir, late + timedelta(hours=2), 5_000, 50)
    again = run_logs(["maintain"], env)
    assert again.returncode == 0, again.stderr
    assert b"retention deleted 1 raw hours and 0 rollup partitions;" in again.stderr
    assert b"rolled up" not in again.stderr
    assert rollup_counts(data_dir, layout.ROLLUPS_DAILY, date) == {date: 300}
    assert set(rollup_counts(data_dir, layout.ROLLUPS_HOURLY, date)) == {
        f"{date}/10",
        f"{date}/11",
    }
    assert dates_in(data_dir, layout.LOGS_TABLE) == {f"{closed_hour(30):%Y-%m-%d}"}
