"""Compaction's output: the merged slices written as a few large zstd files (Polars' streaming
sink, row groups small enough for DuckDB to prune by `ts`), staged on this host, then moved or
uploaded into the hour's folder of the lake under the run's names (lakestate.compacted_name),
and the Delta add action of each, with the statistics readers prune by."""

from __future__ import annotations

import itertools
import json
import logging
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from ingest.lake import layout
from ingest.lake.state import HourFiles, compacted_name
from ingest.lake.store import LakeStore

if TYPE_CHECKING:
    import polars as pl
    from deltalake.transaction import AddAction

log = logging.getLogger("logs.compact")

ROW_GROUP_ROWS = 131_072
"""Rows per Parquet row group of compacted files: small enough for DuckDB to prune by `ts`."""
ZSTD_LEVEL = 3


@dataclass
class Written:
    action: AddAction
    rows: int


def write_files(
    slices: Iterator[pl.DataFrame],
    store: LakeStore,
    table: str,
    hour: HourFiles,
    work: Path,
    target_file_size: int,
    run: str,
) -> list[Written]:
    """Stream the sorted slices through Polars' Parquet sink (zstd, compressed in parallel)
    into files of about `target_file_size`, staged outside the lake, then moved (fsynced) or
    uploaded into the hour's folder of `table` (not yet committed)."""
    import polars as pl
    from polars.io.plugins import register_io_source

    try:
        first = next(slices)
    except StopIteration:
        return []
    rows_per_file = _rows_per_file(first, target_file_size)
    group_rows = max(1024, min(ROW_GROUP_ROWS, rows_per_file // 4))
    schema = first.schema

    def source(
        with_columns: list[str] | None,
        predicate: pl.Expr | None,
        n_rows: int | None,
        batch_size: int | None,
    ) -> Iterator[pl.DataFrame]:
        for frame in itertools.chain([first], slices):
            yield frame if with_columns is None else frame.select(with_columns)

    staged = work / "out"
    shutil.rmtree(staged, ignore_errors=True)
    staged.mkdir(parents=True)
    register_io_source(source, schema=schema).sink_parquet(
        pl.PartitionBy(staged, max_rows_per_file=rows_per_file, approximate_bytes_per_file=None),
        compression="zstd",
        compression_level=ZSTD_LEVEL,
        row_group_size=group_rows,
        maintain_order=True,
        mkdir=True,
    )
    folder = f"date={hour.date}/hour={hour.hour}"
    written: list[Written] = []
    try:
        for number, path in enumerate(sorted(staged.glob("*.parquet"))):
            relative = f"{folder}/{compacted_name(run, number)}"
            done = _add_action(path, relative, hour)
            store.upload(path, f"{table}/{relative}")
            written.append(done)
    except BaseException:
        discard(store, table, written)
        raise
    return written


def _rows_per_file(sample: pl.DataFrame, target_file_size: int) -> int:
    """Rows that make a file of about `target_file_size`: compress a sample to find out."""
    import io

    probe = sample.head(50_000)
    buffer = io.BytesIO()
    probe.write_parquet(buffer, compression="zstd", compression_level=ZSTD_LEVEL)
    per_row = max(1.0, buffer.tell() / max(1, probe.height))
    return max(1, int(target_file_size / per_row))


BOUNDED = ("ts", "ingested_at", "level", "service", "host", "stream_id")
"""Columns whose min/max go into the Delta statistics (the long text ones would be truncated)."""


def _add_action(path: Path, relative: str, hour: HourFiles) -> Written:
    """The Delta add action of a staged file, statistics from its Parquet footer."""
    import pyarrow.parquet as pq
    from deltalake.transaction import AddAction

    meta = pq.read_metadata(path)
    names = meta.schema.to_arrow_schema().names
    low: dict[str, object] = {}
    high: dict[str, object] = {}
    nulls = dict.fromkeys(names, 0)
    for g in range(meta.num_row_groups):
        group = meta.row_group(g)
        for i, name in enumerate(names):
            stats = group.column(i).statistics
            if stats is None:
                continue
            nulls[name] += stats.null_count or 0
            if name not in BOUNDED or not stats.has_min_max:
                continue
            a, b = (
                (stats.min_raw, stats.max_raw)
                if name in ("ts", "ingested_at")
                else (stats.min, stats.max)
            )
            low[name] = a if name not in low else min(low[name], a)  # type: ignore[type-var]
            high[name] = b if name not in high else max(high[name], b)  # type: ignore[type-var]
    stats_json = {
        "numRecords": meta.num_rows,
        "minValues": {k: _stat(k, v, up=False) for k, v in low.items()},
        "maxValues": {k: _stat(k, v, up=True) for k, v in high.items()},
        "nullCount": nulls,
    }
    info = path.stat()
    action = AddAction(
        relative,
        info.st_size,
        {"date": hour.date, "hour": hour.hour},
        int(info.st_mtime * 1000),
        False,
        json.dumps(stats_json),
    )
    return Written(action, meta.num_rows)


def _stat(name: str, value: object, up: bool) -> object:
    """Delta writes timestamp statistics in milliseconds: round the max up, the min down."""
    if name in ("ts", "ingested_at") and isinstance(value, int):
        ms = value // 1000 + (1 if up and value % 1000 else 0)
        moment = layout.EPOCH + timedelta(milliseconds=ms)
        return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{ms % 1000:03d}Z"
    return value


def discard(store: LakeStore, table: str, written: list[Written]) -> None:
    """Files of a commit that did not happen: never referenced, safe to delete now."""
    for w in written:
        store.delete(f"{table}/{w.action.path}")
