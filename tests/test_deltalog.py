"""queries/deltalog.py reads the snapshot's files from `_delta_log` itself (the start-up of
`logs sql`); it must agree with deltalake on real tables (commits, a checkpoint, compaction's
removes, cleaned-up logs) and hand anything unusual back to deltalake."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pytest
from deltalake import DeltaTable

from ingest.lake import layout
from ingest.lake.writer import LakeWriter
from ingest.upkeep import compact
from queries import deltalog, lake
from tests.helpers import closed_hour, entries, fill_hour, run_logs


def deltalake_view(root: Path) -> list[tuple[object, ...]]:
    """What deltalake says of the snapshot, in the shape compared here."""
    actions = DeltaTable(str(root)).get_add_actions(flatten=True)

    def column(name: str) -> list[object]:
        if name not in actions.column_names:
            return [None] * actions.num_rows
        return list(actions.column(name).to_pylist())

    return sorted(
        zip(
            column("path"),
            column("partition.date"),
            column("partition.hour"),
            column("size_bytes"),
            column("num_records"),
            column("min.stream_id"),
            column("max.stream_id"),
            strict=True,
        )
    )


def ours(root: Path) -> list[tuple[object, ...]]:
    found = deltalog.active_files(root)
    assert found is not None
    return sorted(
        (
            a.path,
            a.partition.get("date"),
            a.partition.get("hour"),
            a.size,
            a.records,
            a.min_id,
            a.max_id,
        )
        for a in found
    )


def log_names(root: Path) -> list[str]:
    return sorted(p.name for p in (root / "_delta_log").iterdir())


def test_no_table_is_none(tmp_path: Path) -> None:
    assert deltalog.active_files(tmp_path / "nothing") is None
    (tmp_path / "empty" / "_delta_log").mkdir(parents=True)
    assert deltalog.active_files(tmp_path / "empty") is None


def test_agrees_with_deltalake_across_commits_checkpoints_and_compaction(data_dir: Path) -> None:
    root = layout.table_path(data_dir)
    first, second = closed_hour(30), closed_hour(29)
    fill_hour(data_dir, first, 0, 200, commits=5)
    assert ours(root) == deltalake_view(root)
    # Past the writer's checkpoint interval (50): a checkpoint, then commits after it.
    writer = LakeWriter(data_dir)
    for i in range(52):
        writer.commit(
            entries(second + timedelta(minutes=i % 50), range(1000 + 3 * i, 1003 + 3 * i))
        )
    assert any(".checkpoint.parquet" in n for n in log_names(root))
    assert ours(root) == deltalake_view(root)
    # Compaction removes the hours' files and adds its own.
    report = compact.compact(data_dir, target_file_size=128 << 20, grace=0)
    assert report.compacted
    assert ours(root) == deltalake_view(root)
    # A checkpoint of the compacted state and the commits before it cleaned up: only the
    # checkpoint and what follows it remain.
    table = DeltaTable(str(root))
    table.create_checkpoint()
    for name in log_names(root):
        if name.endswith(".json") and int(name[:20]) < table.version():
            (root / "_delta_log" / name).unlink()
    LakeWriter(data_dir).commit(entries(first, range(5000, 5010)))
    assert ours(root) == deltalake_view(root)


def test_what_it_cannot_read_goes_to_deltalake(tmp_path: Path) -> None:
    import pyarrow as pa
    from deltalake import write_deltalake

    data = pa.table({"stream_id": ["1-0", "2-0"], "date": ["2026-11-20"] * 2, "hour": ["10"] * 2})
    mapped = tmp_path / "mapped"  # column mapping: reader version 2
    write_deltalake(
        str(mapped),
        data,
        partition_by=["date", "hour"],
        configuration={"delta.columnMapping.mode": "name"},
    )
    with pytest.raises(deltalog.Unsupported, match="reader version 2"):
        deltalog.active_files(mapped)
    (only,) = lake.add_files(mapped) or []
    assert only.partition == {"date": "2026-11-20", "hour": "10"} and only.records == 2
    dv = tmp_path / "dv"  # deletion vectors: rows of a file may be deleted
    write_deltalake(
        str(dv),
        data,
        partition_by=["date", "hour"],
        configuration={"delta.enableDeletionVectors": "true"},
    )
    with pytest.raises(deltalog.Unsupported, match="deletionVectors"):
        deltalog.active_files(dv)
    assert len(lake.add_files(dv) or []) == 1
    gap = tmp_path / "gap"
    for _ in range(3):
        write_deltalake(str(gap), data, mode="append")
    (gap / "_delta_log" / f"{1:020d}.json").unlink()
    with pytest.raises(deltalog.Unsupported, match="not contiguous"):
        deltalog.active_files(gap)
    v2 = tmp_path / "v2"
    write_deltalake(str(v2), data)
    (
        v2
        / "_delta_log"
        / f"{0:020d}.checkpoint.{'0' * 8}-{'0' * 4}-{'0' * 4}-{'0' * 4}-{'0' * 12}.json"
    ).write_text("{}")
    with pytest.raises(deltalog.Unsupported, match="V2 checkpoint"):
        deltalog.active_files(v2)


def test_a_damaged_commit_is_exit_3_not_a_traceback(env: dict[str, str], data_dir: Path) -> None:
    fill_hour(data_dir, closed_hour(5), 0, 20, commits=2, redeliver=0)
    last = sorted((layout.table_path(data_dir) / "_delta_log").glob("*.json"))[-1]
    last.write_text(json.dumps({"add": {"path": "x"}})[:-3])  # cut short
    result = run_logs(["sql", "select count(*) from logs"], env)
    assert result.returncode == 3, result.stderr
    assert result.stderr.startswith(b"logs: error: ") and b"Traceback" not in result.stderr


def test_log_file_names() -> None:
    """Which files of `_delta_log` count: commits, complete classic checkpoints (single or
    multi-part); a writer's temporary file, a .crc or an incomplete checkpoint do not."""
    names = [
        f"{0:020d}.json",
        f"{1:020d}.json",
        f"{1:020d}.crc",
        f"{2:020d}.json",
        f"{2:020d}.checkpoint.parquet",
        f"{3:020d}.checkpoint.parquet#1",  # object_store's staging name
        f"{4:020d}.checkpoint.{1:010d}.{2:010d}.parquet",  # part 1 of 2 only
        f"{1:020d}.{2:020d}.compacted.json",
        "_last_checkpoint",
    ]
    assert deltalog._log_files(names) == ([0, 1, 2], 2, [f"{2:020d}.checkpoint.parquet"])
    both = [*names, f"{4:020d}.checkpoint.{2:010d}.{2:010d}.parquet"]
    assert deltalog._log_files(both)[1:] == (
        4,
        [f"{4:020d}.checkpoint.{p:010d}.{2:010d}.parquet" for p in (1, 2)],
    )
    assert deltalog._log_files([f"{0:020d}.json"]) == ([0], -1, [])
