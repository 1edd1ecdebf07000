"""`logs maintain` on a real lake: retention removes exactly the partitions outside the window,
vacuum deletes their files from disk (only past its window), rollups outlive raw data."""

from __future__ import annotations

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
