"""Compaction's merge in bounded memory, for any hour size: the hour is cut into time slices
(a per-second row histogram); each Parquet piece (a small file, or a row group of a big one)
whose `ts` range lies in one slice is read when that slice is merged, pieces spanning slices
are split into spill files first. Each slice is deduplicated by `stream_id` and sorted by `ts`.
Copies of one `stream_id` are identical rows (decoding is deterministic), so they always fall
into the same slice.
"""

from __future__ import annotations

import bisect
import logging
import math
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from ingest.lake import layout
from ingest.lake.schema import arrow_schema

if TYPE_CHECKING:
    import polars as pl
    import pyarrow as pa

log = logging.getLogger("logs.compact")


@dataclass(frozen=True)
class _Unit:
    """A piece read at once: a whole small file, or one row group of a big (compacted) one."""

    path: str
    offset: int | None
    """First row of the row group in its file; None for a whole file."""
    rows: int
    first: int
    last: int
    """Epoch seconds of its smallest and largest `ts` (from the Parquet footer)."""


def sorted_slices(files: list[str], spill: Path, slice_bytes: int) -> Iterator[pl.DataFrame]:
    """The hour's rows, each stream_id once, in `ts` order, one time slice at a time.

    Pieces whose `ts` range lies inside one slice are read when that slice is merged (with
    ingest's time-ordered commits and compacted files' sorted row groups that is nearly all);
    pieces spanning several slices are first split into per-slice spill files.
    """
    import polars as pl

    units = _units(files)
    row_bytes = _row_bytes(units)
    slices = max(1, math.ceil(sum(u.rows for u in units) * row_bytes / slice_bytes))
    if slices == 1:
        yield _dedup_sort(_read(units))
        return
    bounds = _slice_bounds(files, slices)
    direct: dict[int, list[_Unit]] = {}
    spanning: list[_Unit] = []
    for unit in units:
        first, last = (bisect.bisect_right(bounds, t) for t in (unit.first, unit.last))
        if first == last:
            direct.setdefault(first, []).append(unit)
        else:
            spanning.append(unit)
    spilled = _spill(spanning, bounds, spill, max(1, int(slice_bytes / row_bytes)))
    for number in range(len(bounds) + 1):
        parts = []
        if direct.get(number):
            parts.append(_read(direct[number]))
        if spilled.get(number):
            parts.extend(pl.read_ipc(path) for path in spilled[number])
            for path in spilled[number]:
                path.unlink()
        if parts:
            yield _dedup_sort(pl.concat(parts, rechunk=False))


def _dedup_sort(frame: pl.DataFrame) -> pl.DataFrame:
    return frame.unique(subset="stream_id", keep="any").sort("ts")


def _file_schema() -> pa.Schema:
    """The table schema without the partition columns (Delta keeps those in the path)."""
    schema = arrow_schema()
    for name in layout.PARTITION_COLUMNS:
        schema = schema.remove(schema.get_field_index(name))
    return schema


def _units(files: list[str]) -> list[_Unit]:
    import pyarrow.parquet as pq

    units = []
    for path in files:
        meta = pq.read_metadata(path)
        column = meta.schema.to_arrow_schema().get_field_index("ts")
        groups = meta.num_row_groups
        offset = 0
        for group in range(groups):
            rows = meta.row_group(group).num_rows
            stats = meta.row_group(group).column(column).statistics
            if stats is not None and stats.has_min_max:
                first, last = stats.min_raw // 1_000_000, stats.max_raw // 1_000_000
            else:  # unknown range: treat it as spanning everything
                first, last = -(2**62), 2**62
            if rows:
                units.append(_Unit(path, None if groups == 1 else offset, rows, first, last))
            offset += rows
    return units


def _read(units: list[_Unit]) -> pl.DataFrame:
    """Whole files through Polars' parallel reader; row groups of big files as row ranges
    (Polars reads only the row groups a slice touches)."""
    import polars as pl

    columns = _file_schema().names
    whole = [u.path for u in units if u.offset is None]
    frames = [pl.read_parquet(whole, columns=columns, hive_partitioning=False)] if whole else []
    ranges: list[tuple[str, int, int]] = []  # contiguous row groups of a file merged
    for unit in sorted(
        (u for u in units if u.offset is not None), key=lambda u: (u.path, u.offset or 0)
    ):
        offset = unit.offset or 0
        if ranges and ranges[-1][0] == unit.path and sum(ranges[-1][1:]) == offset:
            ranges[-1] = (unit.path, ranges[-1][1], ranges[-1][2] + unit.rows)
        else:
            ranges.append((unit.path, offset, unit.rows))
    for path, offset, rows in ranges:
        frames.append(
            pl.scan_parquet(path, hive_partitioning=False)
            .select(columns)
            .slice(offset, rows)
            .collect()
        )
    return frames[0] if len(frames) == 1 else pl.concat(frames, how="vertical_relaxed")


def _row_bytes(units: list[_Unit]) -> float:
    """In-memory bytes per row, measured on the biggest and the median piece (they carry the
    volume; Parquet's own "uncompressed" size is after encoding and far too small)."""
    if not units:
        return 1.0
    by_size = sorted(units, key=lambda u: u.rows)
    sample = [by_size[-1]] + ([by_size[len(by_size) // 2]] if len(by_size) > 2 else [])
    frame = _read(sample)
    return max(1.0, frame.estimated_size() / max(1, frame.height))


def _slice_bounds(files: list[str], slices: int) -> list[int]:
    """Epoch seconds cutting the hour into `slices` parts of about equal row counts.

    A per-second histogram (at most 3600 groups, streamed) is enough; a burst inside one
    second only makes that slice bigger.
    """
    import polars as pl

    histogram = (
        pl.scan_parquet(files, hive_partitioning=False)
        .select(second=pl.col("ts").dt.epoch("us") // 1_000_000)
        .group_by("second")
        .len()
        .sort("second")
        .collect(engine="streaming")
    )
    total = int(histogram["len"].sum())
    bounds: list[int] = []
    running = 0
    for second, n in histogram.iter_rows():
        if running >= total * (len(bounds) + 1) / slices:
            bounds.append(int(second))
        running += n
    return bounds


def _spill(
    units: list[_Unit], bounds: list[int], spill: Path, group_rows: int
) -> dict[int, list[Path]]:
    """Split pieces spanning several slices into per-slice Arrow IPC files, a memory budget of
    pieces at a time; the writes run beside the next read."""
    import polars as pl

    if not units:
        return {}
    spill.mkdir(parents=True, exist_ok=True)
    cuts = pl.Series("bounds", bounds, dtype=pl.Int64)
    parts: dict[int, list[Path]] = {}
    with ThreadPoolExecutor(max_workers=2, thread_name_prefix="compact-spill") as pool:
        pending: list[Future[None]] = []
        for number, group in enumerate(_groups(units, group_rows)):
            frame = _read(group)
            index = cuts.search_sorted(frame["ts"].dt.epoch("us") // 1_000_000, side="right")
            pieces = frame.with_columns(_slice=index).partition_by(
                "_slice", as_dict=True, include_key=False
            )
            del frame
            for future in pending:  # at most one group in flight: memory stays bounded
                future.result()
            pending = []
            for (piece,), part in pieces.items():
                path = spill / f"{piece:05d}-{number:05d}.arrow"
                pending.append(pool.submit(part.write_ipc, path, compression="uncompressed"))
                parts.setdefault(int(piece), []).append(path)  # type: ignore[call-overload]
        for future in pending:
            future.result()
    return parts


def _groups(units: list[_Unit], budget: int) -> Iterator[list[_Unit]]:
    group: list[_Unit] = []
    held = 0
    for unit in units:
        if group and held + unit.rows > budget:
            yield group
            group, held = [], 0
        group.append(unit)
        held += unit.rows
    if group:
        yield group
