"""`logs compact` on a real lake: duplicates from redelivery and late rows disappear physically,
rows stay the same, readers never see a row twice, an append racing a compaction loses nothing."""

from __future__ import annotations

import threading
from datetime import UTC, datetime
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from ingest.lake import layout
from ingest.lake import state as lakestate
from ingest.lake.writer import LakeWriter
from ingest.upkeep import compact
from tests.helpers import closed_hour, entries, fill_hour, key_of, lake_rows, run_logs

LEVELS = ["DEBUG", "INFO", "WARN", "ERROR", "FATAL"]


def hour_files(data_dir: Path) -> dict[str, tuple[str, ...]]:
    return {k: h.files for k, h in lakestate.snapshot(data_dir).items()}


def distinct_rows(data_dir: Path) -> set[tuple[object, ...]]:
    return set(lake_rows(data_dir, "select * from t"))


def test_compact_all_leaves_one_sorted_duplicate_free_file_per_closed_hour(
    env: dict[str, str], data_dir: Path
) -> None:
    hours = [closed_hour(30), closed_hour(29), closed_hour(27)]
    ids: set[str] = set()
    for i, start in enumerate(hours):
        ids |= fill_hour(data_dir, start, i * 10_000, 3000)
    before = distinct_rows(data_dir)
    raw_before = lake_rows(data_dir, "select count(*) from t")[0][0]
    assert raw_before > len(ids)  # the redeliveries are physically there

    result = run_logs(["compact", "--all"], env)
    assert result.returncode == 0, result.stderr
    assert result.stdout == b""
    assert b"compacted 3 hours, 15 files -> 3" in result.stderr

    files = hour_files(data_dir)
    assert {k: len(v) for k, v in files.items()} == {key_of(h): 1 for h in hours}
    stream_ids = [r[0] for r in lake_rows(data_dir, "select stream_id from t")]
    assert len(stream_ids) == len(set(stream_ids)) == len(ids)
    assert set(stream_ids) == ids
    assert distinct_rows(data_dir) == before
    # Clean per the read path's contract, sorted by ts, zstd, µs UTC timestamps.
    assert lakestate.dirty_hours(data_dir) == []
    root = layout.table_path(data_dir)
    for rel in (f for fs in files.values() for f in fs):
        table = pq.read_table(root / rel)
        ts = table.column("ts").to_pylist()
        assert ts == sorted(ts)
        assert str(table.schema.field("ts").type) == "timestamp[us, tz=UTC]"
        assert pq.ParquetFile(root / rel).metadata.row_group(0).column(0).compression == "ZSTD"

    again = run_logs(["compact", "--all"], env)
    assert again.returncode == 0, again.stderr
    assert b"compacted 0 hours" in again.stderr
    assert hour_files(data_dir) == files


def test_late_rows_make_a_compacted_hour_dirty_and_the_next_run_folds_them_in(
    env: dict[str, str], data_dir: Path
) -> None:
    start = closed_hour(26)
    ids = fill_hour(data_dir, start, 0, 2000)
    assert run_logs(["compact"], env).returncode == 0
    compacted = hour_files(data_dir)[key_of(start)]
    assert len(compacted) == 1

    # Late entries plus a redelivered copy of an entry already compacted.
    late = entries(start, range(50_000, 50_300), late=True)
    LakeWriter(data_dir).commit(late + entries(start, range(5, 6)))
    assert [h.key for h in lakestate.dirty_hours(data_dir)] == [key_of(start)]

    result = run_logs(["compact"], env)
    assert result.returncode == 0, result.stderr
    assert b"compacted 1 hours, 2 files -> 1" in result.stderr
    stream_ids = [r[0] for r in lake_rows(data_dir, "select stream_id from t")]
    assert sorted(stream_ids) == sorted(ids | {r.stream_id for r in late})
    assert lakestate.dirty_hours(data_dir) == []


def test_open_hours_wait_for_the_grace_unless_named(env: dict[str, str], data_dir: Path) -> None:
    now = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    fill_hour(data_dir, now, 0, 500)
    result = run_logs(["compact"], env)
    assert b"compacted 0 hours" in result.stderr
    assert len(hour_files(data_dir)[key_of(now)]) == 5

    named = run_logs(["compact", "--hour", key_of(now)], env)
    assert named.returncode == 0, named.stderr
    assert len(hour_files(data_dir)[key_of(now)]) == 1

    bad = run_logs(["compact", "--hour", "yesterday"], env)
    assert bad.returncode == 2
    assert bad.stderr.startswith(b"logs: error: hour must look like")


def test_target_file_size_splits_an_hour_into_files_in_time_order(
    env: dict[str, str], data_dir: Path
) -> None:
    start = closed_hour(25)
    ids = fill_hour(data_dir, start, 0, 20_000, commits=4)
    result = run_logs(["compact", "--target-file-size", "64k"], env)
    assert result.returncode == 0, result.stderr
    files = hour_files(data_dir)[key_of(start)]
    assert len(files) > 2
    root = layout.table_path(data_dir)
    spans = sorted(
        (t[0], t[-1])
        for t in (pq.read_table(root / f, columns=["ts"]).column("ts").to_pylist() for f in files)
    )
    assert all(a[1] <= b[0] for a, b in zip(spans, spans[1:], strict=False))
    assert sorted(r[0] for r in lake_rows(data_dir, "select stream_id from t")) == sorted(ids)


def test_time_slices_spill_path_gives_the_same_rows_as_one_pass(
    data_dir: Path, tmp_path: Path
) -> None:
    start = closed_hour(40)
    fill_hour(data_dir, start, 0, 6000, commits=6, redeliver=200)
    before = distinct_rows(data_dir)
    # A tiny memory budget forces many time slices through the on-disk spill.
    report = compact.compact(data_dir, target_file_size=64 << 10, grace=0, slice_bytes=64 * 1024)
    assert [(h.outcome, h.rows_after) for h in report.hours] == [("compacted", 6000)]
    assert distinct_rows(data_dir) == before
    assert not any(compact.spill_root(data_dir).iterdir())
    ts = [r[0] for r in lake_rows(data_dir, "select ts from t")]
    assert ts == sorted(ts)

    # Late rows into the compacted hour: its files are now read row group by row group.
    compacted = hour_files(data_dir)[key_of(start)]
    assert len(compacted) > 1
    assert pq.ParquetFile(layout.table_path(data_dir) / compacted[0]).num_row_groups > 1
    LakeWriter(data_dir).commit(
        entries(start, range(70_000, 70_500), late=True) + entries(start, range(10, 20))
    )
    before = distinct_rows(data_dir)
    report = compact.compact(data_dir, target_file_size=128 << 20, grace=0, slice_bytes=64 * 1024)
    assert [(h.outcome, h.rows_after) for h in report.hours] == [("compacted", 6500)]
    assert distinct_rows(data_dir) == before
    ts = [r[0] for r in lake_rows(data_dir, "select ts from t")]
    assert ts == sorted(ts)


def dedup_count(data_dir: Path) -> int:
    """What a reader counts: the snapshot's files, dirty hours deduplicated by stream_id."""
    import duckdb
    from deltalake import DeltaTable

    table = DeltaTable(str(layout.table_path(data_dir)))
    hours = lakestate.hours_of(table)
    record = lakestate.load_compacted(data_dir)
    root = layout.table_path(data_dir)
    clean = [
        str(root / f) for h in hours.values() if lakestate.is_clean(h, record) for f in h.files
    ]
    dirty = [
        str(root / f) for h in hours.values() if not lakestate.is_clean(h, record) for f in h.files
    ]
    con = duckdb.connect()
    total = 0
    if clean:
        total += con.execute("select count(*) from read_parquet(?)", [clean]).fetchall()[0][0]
    if dirty:
        total += con.execute(
            "select count(distinct stream_id) from read_parquet(?)", [dirty]
        ).fetchall()[0][0]
    return total


def test_queries_during_compaction_never_fail_or_double_count(data_dir: Path) -> None:
    ids: set[str] = set()
    for i in range(4):
        ids |= fill_hour(data_dir, closed_hour(50 - i), i * 10_000, 4000, commits=8, redeliver=100)
    counts: list[int] = []
    errors: list[BaseException] = []
    done = threading.Event()

    def query_loop() -> None:
        while not done.is_set():
            try:
                counts.append(dedup_count(data_dir))
            except BaseException as exc:  # noqa: BLE001 - the test reports any failure
                errors.append(exc)

    readers = [threading.Thread(target=query_loop) for _ in range(2)]
    for r in readers:
        r.start()
    try:
        report = compact.compact(data_dir, target_file_size=128 << 20, grace=0)
    finally:
        done.set()
        for r in readers:
            r.join()
    assert len(report.compacted) == 4
    assert errors == []
    assert counts and set(counts) == {len(ids)}
    assert dedup_count(data_dir) == len(ids)


@pytest.mark.slow
def test_an_append_racing_compaction_is_never_lost_or_duplicated(data_dir: Path) -> None:
    start = closed_hour(33)
    ids = fill_hour(data_dir, start, 0, 20_000, commits=4)
    appended: list[str] = []
    stop = threading.Event()

    def append_loop() -> None:
        writer = LakeWriter(data_dir)
        seq = 100_000
        while not stop.is_set():
            batch = entries(start, range(seq, seq + 50))
            writer.commit(batch + batch[:5])  # with a duplicate inside the hour, too
            appended.extend(r.stream_id for r in batch)
            seq += 50

    appender = threading.Thread(target=append_loop)
    appender.start()
    conflicts = 0
    try:
        for _ in range(4):
            report = compact.compact(
                data_dir, target_file_size=128 << 20, grace=0, slice_bytes=256 * 1024
            )
            conflicts += report.conflicts_seen
    finally:
        stop.set()
        appender.join()
    assert conflicts > 0  # the race really happened
    final = compact.compact(data_dir, target_file_size=128 << 20, grace=0)
    assert [h.outcome for h in final.hours] == ["compacted"]
    stream_ids = [r[0] for r in lake_rows(data_dir, "select stream_id from t")]
    assert len(stream_ids) == len(set(stream_ids))
    assert set(stream_ids) == ids | set(appended)


@pytest.mark.parametrize("command", ["compact", "rollup", "maintain", "schedule"])
def test_every_command_has_help_with_an_example(env: dict[str, str], command: str) -> None:
    result = run_logs([command, "--help"], env)
    assert result.returncode == 0
    assert b"Example:" in result.stdout
    assert f"logs {command}".encode() in result.stdout or b"logs schedule" in result.stdout
